"""pgstandby.py: a streaming-replication standby of a test's private PostgreSQL.

For tests that take the primary away (t_failover).  A Standby is a second
private cluster under the test's temporary directory, copied from the
harness's cluster (env) with pg_basebackup -R and run the way the harness
runs its own (harness.pg_bindir(), as 'postgres' when the suite runs as
root, 127.0.0.1 only, a free port).  It never touches the system PostgreSQL
service, and every wait is bounded.

    sb = Standby(env, "standby1")
    sb.create(); sb.start(); sb.make_synchronous()
    env.conninfo = sb.multi_host_conninfo()
    ...
    sb.stop_primary_immediate(); sb.promote(); sb.take_over()

Order matters: the copy is taken before the primary names it in
synchronous_standby_names, so the promoted standby does not wait for a
standby of its own at every commit.  Until take_over() the standby is this
object's to stop (stop(), at exit, on SIGINT/SIGTERM/SIGHUP); after it, it
is env's cluster (env.psql, env.sql and env's teardown use it).
"""

import atexit
import os
import pwd
import signal

from harness import Fatal, free_port


class Standby:
    def __init__(self, env, name):
        self.env = env
        self.name = name                 # its application_name on the primary
        self.data = os.path.join(env.tmp, name)
        self.sock = os.path.join(env.tmp, f"{name}-sock")
        self.log = os.path.join(env.tmp, f"{name}.log")
        self.port = None
        self.primary_port = env.pg_port
        self.running = False
        self.taken_over = False

    # --- life cycle -------------------------------------------------------
    def create(self):
        """pg_basebackup -R of env's cluster (WAL streamed, standby.signal written)."""
        env = self.env
        os.mkdir(self.data, 0o700)
        os.mkdir(self.sock, 0o755)
        with open(self.log, "w"):
            pass
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            for p in (self.data, self.sock, self.log):
                os.chown(p, pw.pw_uid, pw.pw_gid)
        src = (f"host=127.0.0.1 port={self.primary_port} user=postgres "
               f"application_name={self.name} connect_timeout=5")
        env._run(env._as_pg + [os.path.join(env.pg_bin, "pg_basebackup"), "-d", src,
                               "-D", self.data, "-R", "-X", "stream", "-c", "fast", "--no-sync"],
                 timeout=120, cwd=env.tmp, log=os.path.join(env.tmp, f"{self.name}-basebackup.log"))
        self.port = free_port()

    def _pg_ctl(self, *args, check=True, timeout=90):
        env = self.env
        cmd = env._as_pg + [os.path.join(env.pg_bin, "pg_ctl"), "-D", self.data]
        return env._run(cmd + list(args), check=check, timeout=timeout, cwd=env.tmp,
                        log=os.path.join(env.tmp, f"{self.name}-pg_ctl.log"))

    def start(self):
        """Starts the standby (hot standby: it answers read-only queries)."""
        opts = (f"-k {self.sock} -p {self.port} -c listen_addresses=127.0.0.1 "
                f"-c max_connections=50 -c cluster_name={self.name}")
        if not self.running:
            atexit.register(self.stop)
            self._stop_on_signals()
        self._pg_ctl("start", "-w", "-t", "60", "-l", self.log, "-o", opts)
        self.running = True

    def stop(self, mode="fast"):
        """Stops the standby unless env owns it now (take_over)."""
        if self.running and not self.taken_over:
            self._pg_ctl("stop", "-w", "-t", "60", "-m", mode, check=False)
            self.running = False

    def _stop_on_signals(self):
        # the harness's handler tears env down and _exits: stop this cluster first
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            prev = signal.getsignal(sig)

            def handler(signum, frame, prev=prev):
                self.stop("immediate")
                if callable(prev):
                    prev(signum, frame)
                else:
                    os._exit(128 + signum)
            signal.signal(sig, handler)

    # --- replication ------------------------------------------------------
    def multi_host_conninfo(self):
        """libpq conninfo naming the primary, then this standby; only a
        read-write server is taken."""
        return (f"host=127.0.0.1,127.0.0.1 port={self.primary_port},{self.port} dbname=pushgate "
                f"user=postgres connect_timeout=5 target_session_attrs=read-write")

    def replication_state(self):
        """(state, sync_state) of this standby in the primary's pg_stat_replication, or None."""
        rows = self.env.sql(f"SELECT state, sync_state FROM pg_stat_replication "
                            f"WHERE application_name = '{self.name}'")
        return rows[0] if rows else None

    def make_synchronous(self, timeout=60):
        """Waits until the standby streams, then makes every commit on the
        primary wait for its flush (synchronous_commit stays 'on')."""
        env = self.env
        env.wait_for(lambda: (self.replication_state() or ("",))[0] == "streaming",
                     timeout=timeout, what=f"{self.name} streaming from the primary")
        env.psql(f"ALTER SYSTEM SET synchronous_standby_names = '\"{self.name}\"'")
        env.psql("SELECT pg_reload_conf()")
        env.wait_for(lambda: self.replication_state() == ("streaming", "sync"),
                     timeout=timeout, what=f"{self.name} synchronous")

    def sql(self, query):
        """Rows of a query on this standby, as env.sql gives them."""
        saved = self.env.pg_port
        self.env.pg_port = self.port
        try:
            return self.env.sql(query)
        finally:
            self.env.pg_port = saved

    def stop_primary_immediate(self):
        """Stops env's cluster as a crash would (no shutdown checkpoint, sessions cut)."""
        self.env._pg_ctl("stop", "-w", "-t", "60", "-m", "immediate", timeout=90)
        self.env._pg_started = False

    def promote(self, timeout=60):
        """pg_ctl promote, and waits until the standby accepts writes."""
        self._pg_ctl("promote", "-w", "-t", str(timeout), timeout=timeout + 30)
        self.env.wait_for(lambda: self.sql("SELECT pg_is_in_recovery()") == [("f",)],
                          timeout=timeout, what=f"{self.name} out of recovery")

    def take_over(self):
        """env's cluster is this one from now on (queries, teardown)."""
        env = self.env
        if env._pg_started:
            raise Fatal("the old primary still runs")
        env.pg_data, env.pg_port, env.pg_sock, env.pg_log = self.data, self.port, self.sock, self.log
        env._pg_started = True
        self.taken_over = True
