"""t_deb: the Debian package, built, installed, run and purged (docs/operations.md).

pushgate.ini(5) lists every key of src/config.c's tables with config.c's
default. The source tree (tracked and new files, as git sees them) is copied
to a temporary directory and built once with `dpkg-buildpackage -us -uc -b`;
both packages hold what the file-system layout promises (pushgated in
/usr/sbin, the conffile, the unit, the inbox page, the manual pages; the
simulators apart in pushgate-tools) and depend on no -dev package. Installed
(as root: CI runs the suite as root; otherwise the install fails saying so),
the package made the pushgate user, the conffile readable by root and group
pushgate only, the state and log directories, and manual pages that `man`
finds; systemd-analyze accepts the unit and counts its exposure at most
MAX_EXPOSURE.

Then the installed /usr/sbin/pushgated runs as the pushgate user, with no
capability and no new privileges, from the installed conffile pointed at
this test's PostgreSQL, through the roles docs/operations.md sets up (its
SQL blocks run as written): the schema applied by pushgatectl migrate as
pushgate_owner, pushgated on the role pushgate that may only change rows.
It says READY=1 on $NOTIFY_SOCKET, answers /healthz, serves the installed
inbox page and delivers a message through the installed smsc-sim
(pushgate-tools). logrotate rotates its log file and SIGHUP makes it write
to the new one; SIGTERM brings STOPPING=1 and exit 0. Purging leaves no
file, no dpkg-statoverride and (when this test made it) no pushgate user;
teardown purges too when a case failed half-way.
"""
import glob
import grp
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import harness
from harness import TAP, free_port

MAX_EXPOSURE = 1.5          # systemd-analyze security --offline: 1.1 when written (systemd 252)
BUILD_TIMEOUT = 1500        # dpkg-buildpackage, one build, 2 cores (about 1 min when idle)
PACKAGES = ("pushgate", "pushgate-tools")
UNIT_PATHS = ("/lib/systemd/system/pushgate.service", "/usr/lib/systemd/system/pushgate.service")

tests = TAP()
state = {"procs": []}


def run(cmd, timeout=120, check=True, **kw):
    """A command's CompletedProcess (text, stdout+stderr together in .stdout), bounded."""
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout,
                       stdin=subprocess.DEVNULL, **kw)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {r.returncode}:\n{r.stdout[-3000:]}")
    return r


def dpkg(args, timeout=300):
    """dpkg ARGS, waiting (bounded) while another dpkg or apt holds its lock; the CompletedProcess."""
    deadline = time.monotonic() + 180
    while True:
        r = run(["dpkg"] + args, timeout=timeout, check=False,
                env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
        if r.returncode == 0 or "lock" not in r.stdout or time.monotonic() > deadline:
            return r
        time.sleep(2)


def need(key, what):
    if key not in state:
        raise AssertionError(f"not run: {what} did not happen (see the case that failed before)")
    return state[key]


def installed(pkg):
    r = run(["dpkg-query", "-W", "-f=${db:Status-Status}", pkg], check=False, timeout=60)
    return r.returncode == 0 and r.stdout.strip() == "installed"


def source_version(src):
    with open(os.path.join(src, "configure.ac"), encoding="utf-8") as f:
        return re.search(r"AC_INIT\(\[pushgate\], \[([^]]+)\]", f.read()).group(1)


# --- pushgate.ini(5) against src/config.c ----------------------------------

def macro_calls(text, names):
    """(macro, [string literals]) of each call of one of names in C text, parentheses in strings allowed."""
    out = []
    for m in re.finditer(r"\b(%s)\(" % "|".join(names), text):
        i, depth, args = m.end(), 1, []
        while depth:
            c = text[i]
            if c == '"':
                j = i + 1
                while text[j] != '"':
                    j += 2 if text[j] == "\\" else 1
                args.append(text[i + 1:j])
                i = j
            elif c == "(":
                depth += 1
            elif c == ")":
                depth -= 1
            i += 1
        out.append((m.group(1), args))
    return out


def config_c_keys(src):
    """{(section, key): default} of every key src/config.c accepts."""
    with open(os.path.join(src, "src", "config.c"), encoding="utf-8") as f:
        text = f.read()
    keys = {}
    for table, section in (("global_keys", None), ("route_keys", "smpp"), ("fcm_keys", "fcm"),
                           ("apns_keys", "apns")):
        m = re.search(r"static const struct key_def %s\[\] = \{(.*?)\n\};" % table, text, re.S)
        assert m, f"src/config.c: no table {table}[]"
        calls = macro_calls(m.group(1), ("CSTR", "CNUM", "RSTR", "RNUM", "ASTR"))
        assert calls, f"src/config.c: {table}[] lists no key"
        for macro, args in calls:
            if macro in ("CSTR", "CNUM"):
                keys[(args[0], args[1])] = args[-1]
            elif macro == "ASTR":
                keys[(section, args[0])] = ""
            else:
                keys[(section, args[0])] = args[-1]
    return keys


def man_keys(path):
    """{(section, key): default} of the `.B key = default` lines under each `.SH "[section ...]"`."""
    keys, section = {}, None
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith(".SH "):
                title = re.sub(r"\\f[A-Z]", "", line[4:].strip().strip('"'))
                m = re.match(r"\[(\w+)", title)
                section = m.group(1) if m else None
            elif section and line.startswith(".B ") and " =" in line:
                k, _, v = line[3:].replace("\\-", "-").replace("\\&", "").partition(" =")
                keys[(section, k.strip())] = v.strip()
    return keys


@tests.case
def pushgate_ini_5_lists_every_key_of_config_c_with_its_default(env):
    code = config_c_keys(env.srcdir)
    man = man_keys(os.path.join(env.srcdir, "man", "pushgate.ini.5"))
    missing = [f"[{s}] {k}" for (s, k) in sorted(code) if (s, k) not in man]
    wrong = [f"[{s}] {k}: man says {man[(s, k)]!r}, config.c {d!r}" for (s, k), d in sorted(code.items())
             if (s, k) in man and man[(s, k)] != d]
    assert not missing and not wrong, ("man/pushgate.ini.5 is behind src/config.c:\n  missing: "
                                       + ", ".join(missing) + "\n  " + "\n  ".join(wrong))
    extra = sorted(f"[{s}] {k}" for (s, k) in man if (s, k) not in code)
    if extra:
        print(f"# documented in pushgate.ini(5) but not in src/config.c: {', '.join(extra)}", flush=True)
    print(f"# {len(code)} keys of src/config.c, each in pushgate.ini(5) with its default", flush=True)


# --- the build --------------------------------------------------------------

def copy_source(src, dst):
    """The tree git sees (tracked and untracked, not ignored) to dst; without git, the tree minus build output."""
    r = subprocess.run(["git", "-c", "safe.directory=*", "-C", src, "ls-files", "-z", "-c", "-o",
                        "--exclude-standard"], capture_output=True, timeout=60)
    if r.returncode == 0 and r.stdout:
        os.makedirs(dst)
        for rel in sorted(set(r.stdout.decode().split("\0")) - {""}):
            path = os.path.join(src, rel)
            if not os.path.lexists(path) or os.path.isdir(path):
                continue    # deleted in the work tree, or a submodule
            os.makedirs(os.path.join(dst, os.path.dirname(rel)), exist_ok=True)
            shutil.copy2(path, os.path.join(dst, rel), follow_symlinks=False)
        return "git ls-files"
    shutil.copytree(src, dst, symlinks=True, ignore=shutil.ignore_patterns(
        "build", "var", "autom4te.cache", "node_modules", "__pycache__", "fuzz", ".git"))
    return "a copy of the tree (no git)"


@tests.case
def dpkg_buildpackage_builds_both_packages(env):
    assert shutil.which("dpkg-buildpackage"), "dpkg-buildpackage is missing (package dpkg-dev)"
    assert shutil.which("dh"), "debhelper is missing: tools/install-deps installs it"
    top = os.path.join(env.tmp, "deb")
    os.mkdir(top)
    os.chmod(top, 0o755)
    src = os.path.join(top, "pushgate")
    how = copy_source(env.srcdir, src)
    assert os.path.isfile(os.path.join(src, "debian", "rules")), f"no debian/rules in {src} ({how})"
    build_env = {k: v for k, v in os.environ.items()
                 if not k.startswith(("MAKE", "MFLAGS", "DEB_", "DH_", "PUSHGATE_", "CFLAGS", "CPPFLAGS",
                                      "LDFLAGS"))}
    build_env.update(DEB_BUILD_OPTIONS="nocheck parallel=2 noautodbgsym", LC_ALL="C.UTF-8")
    log = os.path.join(top, "dpkg-buildpackage.log")
    started = time.monotonic()
    with open(log, "wb") as out:
        r = subprocess.run(["dpkg-buildpackage", "-us", "-uc", "-b"], cwd=src, stdout=out,
                           stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=build_env,
                           timeout=BUILD_TIMEOUT)
    took = time.monotonic() - started
    assert r.returncode == 0, f"dpkg-buildpackage exited {r.returncode} after {took:.0f} s:\n" + harness.tail(log, 40)
    version = source_version(env.srcdir)
    debs = {}
    for pkg in PACKAGES:
        found = glob.glob(os.path.join(top, f"{pkg}_{version}_*.deb"))
        assert len(found) == 1, f"{pkg}_{version}_*.deb: found {found} in {os.listdir(top)}"
        debs[pkg] = found[0]
    state["debs"] = debs
    state["top"] = top
    print(f"# dpkg-buildpackage took {took:.0f} s ({how})", flush=True)


def deb_paths(deb):
    """{path: mode string} of a .deb's files ("./usr/..." without the leading dot)."""
    out = {}
    for line in run(["dpkg-deb", "-c", deb], timeout=60).stdout.splitlines():
        f = line.split()
        out[f[5][1:].rstrip("/") or "/"] = f[0]
    return out


@tests.case
def the_packages_hold_the_fhs_layout_and_depend_on_no_dev_package(env):
    debs = need("debs", "the build")
    main, tools = deb_paths(debs["pushgate"]), deb_paths(debs["pushgate-tools"])
    want = ["/usr/sbin/pushgated", "/usr/bin/pushgatectl", "/etc/pushgate/pushgate.ini",
            "/etc/logrotate.d/pushgate", "/usr/share/pushgate/web/index.html", "/usr/share/pushgate/web/app.js",
            "/usr/share/man/man8/pushgated.8.gz", "/usr/share/man/man8/pushgatectl.8.gz",
            "/usr/share/man/man5/pushgate.ini.5.gz", "/usr/share/doc/pushgate/operations.md.gz",
            "/var/lib/pushgate", "/var/log/pushgate"]
    missing = [p for p in want if p not in main]
    assert not missing, f"pushgate lacks {missing}; it has {sorted(main)}"
    assert any(p in main for p in UNIT_PATHS), f"no pushgate.service in {sorted(main)}"
    assert main["/etc/pushgate/pushgate.ini"] == "-rw-r-----", main["/etc/pushgate/pushgate.ini"]
    assert main["/etc/pushgate"] == "drwxr-x---", main["/etc/pushgate"]
    sims = ["/usr/bin/smsc-sim", "/usr/bin/pushgate-device", "/usr/share/man/man1/smsc-sim.1.gz",
            "/usr/share/man/man1/pushgate-device.1.gz"]
    assert all(p in tools for p in sims), f"pushgate-tools lacks some of {sims}: {sorted(tools)}"
    assert not [p for p in main if "smsc-sim" in p or "pushgate-device" in p], "the simulators are in pushgate"
    assert not [p for p in list(main) + list(tools) if p.startswith(("/usr/include", "/usr/local"))]
    conffiles = run(["dpkg-deb", "-I", debs["pushgate"], "conffiles"], timeout=60).stdout.split()
    assert "/etc/pushgate/pushgate.ini" in conffiles, conffiles
    for pkg, deb in debs.items():
        depends = run(["dpkg-deb", "-f", deb, "Depends"], timeout=60).stdout.strip()
        assert depends and not re.search(r"-dev\b", depends), f"{pkg} Depends: {depends}"
        assert "libc6" in depends and "libssl3" in depends, f"{pkg}: Depends not from shlibs: {depends}"
        if pkg == "pushgate":
            assert "libpq5" in depends and "postgresql" not in re.sub(r"libpq5[^,]*", "", depends), depends


# --- installed --------------------------------------------------------------

def purge(env):
    """Stops what this test started from the package, purges both packages, removes the user it made."""
    for proc in state["procs"]:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    present = [p for p in PACKAGES if installed(p)]
    if present:
        r = dpkg(["--purge"] + present)
        assert r.returncode == 0, f"dpkg --purge exited {r.returncode}:\n{r.stdout[-3000:]}"
    if state.get("made_user"):
        try:
            pwd.getpwnam("pushgate")
            run(["userdel", "pushgate"], timeout=60)
        except KeyError:
            pass
        try:
            grp.getgrnam("pushgate")
            run(["groupdel", "pushgate"], timeout=60)
        except KeyError:
            pass


@tests.case
def dpkg_i_makes_the_pushgate_user_a_private_conffile_and_the_state_directories(env):
    debs = need("debs", "the build")
    assert os.geteuid() == 0, ("installing the package needs root: run the suite as root (CI does), "
                               "or sudo python3 tests/integration/t_deb.py")
    for p in PACKAGES:
        assert not installed(p), (f"{p} is installed on this machine already; this test installs and purges "
                                  f"it: dpkg --purge {p} first")
    try:
        pwd.getpwnam("pushgate")
        state["made_user"] = False
    except KeyError:
        state["made_user"] = True
    env.on_teardown(lambda: purge(env))
    state["cleanup"] = True
    r = dpkg(["-i", debs["pushgate"], debs["pushgate-tools"]])
    assert r.returncode == 0, f"dpkg -i exited {r.returncode}:\n{r.stdout[-3000:]}"
    pw = pwd.getpwnam("pushgate")
    gid = grp.getgrnam("pushgate").gr_gid
    assert pw.pw_uid < 1000 and pw.pw_dir == "/var/lib/pushgate" and pw.pw_shell.endswith("nologin"), pw
    adm = grp.getgrnam("adm").gr_gid
    for path, uid, g, mode in (("/etc/pushgate", 0, gid, 0o750), ("/etc/pushgate/pushgate.ini", 0, gid, 0o640),
                               ("/var/lib/pushgate", pw.pw_uid, gid, 0o750),
                               ("/var/log/pushgate", pw.pw_uid, adm, 0o2750)):
        st = os.stat(path)
        got = (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode))
        assert got == (uid, g, mode), f"{path}: uid, gid, mode {got}, expected {(uid, g, oct(mode))}"
    conffiles = run(["dpkg-query", "-W", "-f=${Conffiles}", "pushgate"], timeout=60).stdout
    assert "/etc/pushgate/pushgate.ini" in conffiles, conffiles
    with open("/etc/pushgate/pushgate.ini", encoding="utf-8") as f:
        assert re.search(r"^user = pushgate$", f.read(), re.M), "the conffile does not name [server] user"
    assert run(["/usr/sbin/pushgated", "--version"], timeout=30).stdout == f"pushgated {source_version(env.srcdir)}\n"
    state["installed"] = True


@tests.case
def man_finds_pushgated_8_pushgatectl_8_and_pushgate_ini_5(env):
    need("installed", "the install")
    assert shutil.which("man"), "man is missing (package man-db)"
    menv = dict(os.environ, MANPAGER="cat", PAGER="cat", MANWIDTH="80", LC_ALL="C.UTF-8")
    where = run(["man", "-w", "pushgated"], timeout=60, env=menv).stdout.strip()
    assert where == "/usr/share/man/man8/pushgated.8.gz", where
    for args, words in ((["pushgatectl"], ("pushgatectl", "migrate", "PUSHGATE_DB")),
                        (["5", "pushgate.ini"], ("pushgate.ini", "[smpp_server]", "log_file")),
                        (["8", "pushgated"], ("READY=1", "SIGHUP")),
                        (["1", "smsc-sim"], ("smsc-sim",))):
        r = run(["man"] + args, timeout=60, env=menv)
        text = re.sub(r".\x08", "", r.stdout)
        assert all(w in text for w in words), f"man {' '.join(args)}: {words} not all in:\n{text[:1500]}"
        page = run(["man", "-w"] + args, timeout=60, env=menv).stdout.strip()
        warn = subprocess.run(["man", "--warnings", "-l", page], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              text=True, timeout=60, env=menv, stdin=subprocess.DEVNULL)
        assert warn.returncode == 0 and not warn.stderr.strip(), f"groff warns about {page}: {warn.stderr[:1000]}"


@tests.case
def systemd_analyze_accepts_the_unit_and_counts_its_exposure_ok(env):
    need("installed", "the install")
    assert shutil.which("systemd-analyze"), "systemd-analyze is missing (package systemd)"
    unit = next((p for p in UNIT_PATHS if os.path.exists(p)), None)
    assert unit, f"none of {UNIT_PATHS} installed"
    r = run(["systemd-analyze", "verify", unit], timeout=120, check=False)
    assert r.returncode == 0 and not r.stdout.strip(), f"systemd-analyze verify {unit}: {r.returncode}\n{r.stdout}"
    r = run(["systemd-analyze", "security", "--offline=true", "--no-pager", unit], timeout=120, check=False)
    m = re.search(r"Overall exposure level for pushgate\.service: ([0-9.]+) (\w+)", r.stdout)
    assert m, f"systemd-analyze security exited {r.returncode}:\n{r.stdout[-2000:]}"
    print(f"# systemd-analyze security --offline=true: {m.group(1)} {m.group(2)}", flush=True)
    assert float(m.group(1)) <= MAX_EXPOSURE, f"exposure {m.group(1)} > {MAX_EXPOSURE}:\n{r.stdout}"
    with open(unit, encoding="utf-8") as f:
        text = f.read()
    for line in ("Type=notify", "User=pushgate", "ExecStart=/usr/sbin/pushgated -c /etc/pushgate/pushgate.ini",
                 "NoNewPrivileges=yes", "ProtectSystem=strict", "PrivateTmp=yes", "CapabilityBoundingSet=\n",
                 "After=network-online.target postgresql.service", "Wants=network-online.target"):
        assert line in text, f"{unit} has no {line.strip()!r}"
    assert re.search(r"^ReadWritePaths=.*/var/lib/pushgate", text, re.M), "no ReadWritePaths= for the state"


# --- the installed daemon on a role that changes rows only -------------------

def doc_sql_blocks(src):
    """docs/operations.md's SQL, by the comment that opens each block."""
    with open(os.path.join(src, "docs", "operations.md"), encoding="utf-8") as f:
        blocks = re.findall(r"```sql\n(.*?)```", f.read(), re.S)
    out = {}
    for b in blocks:
        for name, opening in (("superuser", "-- as a superuser"), ("owner", "-- as pushgate_owner"),
                              ("existing", "-- tables created before")):
            if b.startswith(opening):
                out[name] = b
    assert set(out) == {"superuser", "owner", "existing"}, f"docs/operations.md: SQL blocks found: {sorted(out)}"
    return out


def psql_file(env, user, db, sql, name):
    path = os.path.join(state["top"], f"{name}.sql")
    with open(path, "w", encoding="utf-8") as f:
        f.write(sql)
    return run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(env.pg_port),
                "-U", user, "-d", db, "-f", path], timeout=60, check=False,
               env=dict(os.environ, PGCONNECT_TIMEOUT="5"))


def conninfo(env, user):
    return f"host=127.0.0.1 port={env.pg_port} dbname=pushgate user={user} connect_timeout=5"


def notes(sock, timeout):
    got, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            got.append(sock.recv(4096).decode())
        except socket.timeout:
            break
    return got


def proc_status(pid):
    with open(f"/proc/{pid}/status", encoding="utf-8") as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


@tests.case
def the_schema_goes_on_as_pushgate_owner_and_the_role_pushgate_may_only_change_rows(env):
    need("installed", "the install")
    sql = doc_sql_blocks(env.srcdir)
    env.psql("DROP DATABASE pushgate", dbname="postgres")   # the harness's; the doc makes its own
    r = psql_file(env, "postgres", "postgres", sql["superuser"], "superuser")
    assert r.returncode == 0, f"the superuser block: {r.stdout}"
    r = psql_file(env, "pushgate_owner", "pushgate", sql["owner"], "owner")
    assert r.returncode == 0, f"the pushgate_owner block: {r.stdout}"
    r = run(["/usr/bin/pushgatectl", "-d", conninfo(env, "pushgate_owner"), "migrate"], timeout=120, check=False)
    assert r.returncode == 0, f"pushgatectl migrate as pushgate_owner: {r.stdout}"
    r = psql_file(env, "pushgate_owner", "pushgate", sql["existing"], "existing")
    assert r.returncode == 0, f"the block for existing tables: {r.stdout}"
    assert env.scalar("SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tableowner <> 'pushgate_owner'") == "0"
    for probe in ("CREATE TABLE t_deb_probe (x int)", "CREATE TEMP TABLE t_deb_probe (x int)",
                  "CREATE FUNCTION t_deb_probe() RETURNS int LANGUAGE sql AS 'SELECT 1'", "DROP TABLE events",
                  "TRUNCATE events"):
        r = run(["psql", "-X", "-q", "-h", "127.0.0.1", "-p", str(env.pg_port), "-U", "pushgate", "-d", "pushgate",
                 "-v", "ON_ERROR_STOP=1", "-c", probe], timeout=60, check=False)
        assert r.returncode != 0 and ("permission denied" in r.stdout or "must be owner" in r.stdout), \
            f"the role pushgate may {probe!r}: {r.stdout}"
    r = run(["/usr/bin/pushgatectl", "-d", conninfo(env, "pushgate"), "migrate"], timeout=120, check=False)
    assert r.returncode == 0, f"pushgatectl migrate on a current schema as pushgate: {r.stdout}"
    r = subprocess.run(["/usr/bin/pushgatectl", "-d", conninfo(env, "pushgate"), "account", "add", "--any-sender",
                        "debtest"], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode == 0 and re.fullmatch(r"\S+\n", r.stdout), f"account add as pushgate: {r.stdout}{r.stderr}"
    state["key"] = r.stdout.strip()
    state["roles"] = True


@tests.case
def the_installed_pushgated_runs_as_pushgate_says_ready_1_and_delivers_through_the_installed_smsc_sim(env):
    need("roles", "the roles")
    top = state["top"]
    sim = subprocess.Popen(["/usr/bin/smsc-sim", "--listen", "127.0.0.1:0", "--dlr-delay-ms", "50",
                            "--log", os.path.join(top, "smsc.log")], stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    state["procs"].append(sim)
    line = harness._read_line_matching(sim, "ready port=", timeout=15)
    assert line, f"the installed smsc-sim printed no 'ready port=' (exit {sim.poll()})"
    sim_port = int(line.split("ready port=", 1)[1].split()[0])

    # the installed conffile, pointed at this test's database, smsc-sim, a free port and a log file
    port = free_port()
    with open("/etc/pushgate/pushgate.ini", encoding="utf-8") as f:
        text = f.read()
    section, lines = None, []
    values = {("server", "http_listen"): f"127.0.0.1:{port}", ("server", "log_file"): "/var/log/pushgate/pushgated.log",
              ("database", "conninfo"): conninfo(env, "pushgate"), ("smpp", "port"): str(sim_port),
              ("smpp", "reconnect_min"): "0.2", ("smpp", "reconnect_max"): "1"}
    for line in text.split("\n"):
        if line.startswith("["):
            section = line.strip("[] ")
        k = line.split("=", 1)[0].strip()
        if (section, k) in values and "=" in line and not line.startswith(";"):
            line = f"{k} = {values.pop((section, k))}"
        lines.append(line)
    assert not values, f"the conffile has no line for {values}"
    ini = os.path.join(top, "pushgate.ini")
    with open(os.open(ini, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640), "w", encoding="utf-8") as f:
        f.write("\n".join(lines))
    gid = grp.getgrnam("pushgate").gr_gid
    os.chown(ini, 0, gid)
    state["log"] = "/var/log/pushgate/pushgated.log"

    sock_path = os.path.join(top, "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(sock_path)
    os.chown(sock_path, pwd.getpwnam("pushgate").pw_uid, gid)
    state["sock"] = sock
    child_env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "NOTIFY_SOCKET": sock_path}
    err = open(os.path.join(top, "pushgated.stderr"), "wb")
    proc = subprocess.Popen(["setpriv", "--reuid=pushgate", "--regid=pushgate", "--init-groups", "--no-new-privs",
                             "--inh-caps=-all", "--bounding-set=-all", "/usr/sbin/pushgated", "-c", ini],
                            stdin=subprocess.DEVNULL, stdout=err, stderr=err, env=child_env, cwd="/")
    err.close()
    state["procs"].append(proc)
    state["proc"] = proc
    sock.settimeout(60)
    try:
        first = sock.recv(4096).decode()
    except socket.timeout:
        raise AssertionError("no READY=1 within 60 s; exit " + str(proc.poll()) + "\n"
                             + harness.tail(os.path.join(top, "pushgated.stderr"), 20) + "\n"
                             + harness.tail(state["log"], 30))
    assert first == "READY=1", first
    st = proc_status(proc.pid)
    pw = pwd.getpwnam("pushgate")
    assert st["Uid"].split()[:2] == [str(pw.pw_uid)] * 2 and st["CapBnd"] == "0000000000000000" \
        and st["CapEff"] == "0000000000000000" and st["NoNewPrivs"] == "1", st

    env.http_port = port   # the harness's HTTP helpers now talk to the installed daemon
    assert env.health().get("db") == "up", env.health()
    env.wait_for(lambda: harness.Env.readyz_at(port)[0] == 200, timeout=30, what="/readyz 200 (the route bound)")
    status, _, _, raw = env.http("GET", "/", key=None)
    with open("/usr/share/pushgate/web/index.html", "rb") as f:
        assert status == 200 and raw == f.read(), (status, raw[:200])
    body = env.send(["821055500001"], text="from the package", key=state["key"])
    rid = body["recipients"][0]["id"]
    env.wait_for(lambda: env.scalar(f"SELECT state FROM recipients WHERE id = {int(rid)}") == "SMS_DELIVERED",
                 timeout=30, what="the recipient SMS_DELIVERED")
    # the report rollups move under the documented role (pg_read_all_stats): the job counts it
    env.wait_for(lambda: env.scalar("SELECT coalesce(sum(recipients), 0) FROM report_counts"
                                    " WHERE grain = 'd' AND state = 'SMS_DELIVERED'") == "1",
                 timeout=30, what="the delivered recipient in the report rollups")
    log = harness._read_text(state["log"])
    assert "ev=ready" in log and "level=error" not in log, log[-3000:]
    st = os.stat(state["log"])
    assert st.st_uid == pw.pw_uid and stat.S_IMODE(st.st_mode) & 0o007 == 0, (st.st_uid, oct(st.st_mode))


@tests.case
def logrotate_rotates_the_log_and_sighup_makes_pushgated_write_to_the_new_file(env):
    proc, log = need("proc", "the daemon's start"), state["log"]
    assert shutil.which("logrotate"), "logrotate is missing: tools/install-deps installs it"
    r = run(["logrotate", "-v", "--state", os.path.join(state["top"], "logrotate.state"), "-f",
             "/etc/logrotate.d/pushgate"], timeout=60, check=False)
    assert r.returncode == 0 and os.path.exists(log + ".1"), f"logrotate exited {r.returncode}:\n{r.stdout}"
    st = os.stat(log)
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (
        pwd.getpwnam("pushgate").pw_uid, grp.getgrnam("adm").gr_gid, 0o640), (st.st_uid, st.st_gid, oct(st.st_mode))
    proc.send_signal(signal.SIGHUP)   # what systemctl reload (the postrotate) sends
    env.wait_for(lambda: "ev=reloaded log_reopened=yes" in harness._read_text(log), timeout=15,
                 what="the reload said in the new log file")
    assert "ev=reloaded" not in harness._read_text(log + ".1")
    assert proc.poll() is None


@tests.case
def sigterm_brings_stopping_1_and_exit_0(env):
    proc, sock = need("proc", "the daemon's start"), state["sock"]
    notes(sock, 0.05)
    proc.send_signal(signal.SIGTERM)
    got = notes(sock, 10)
    assert "STOPPING=1" in got, got
    assert proc.wait(timeout=30) == 0
    assert "level=error" not in harness._read_text(state["log"])


@tests.case
def dpkg_purge_leaves_no_file_no_statoverride_and_no_user_it_made(env):
    need("installed", "the install")
    purge(env)
    for p in PACKAGES:
        assert not installed(p), f"{p} still installed"
    left = [p for p in ("/etc/pushgate", "/var/lib/pushgate", "/var/log/pushgate", "/usr/sbin/pushgated",
                        "/usr/share/pushgate", "/etc/logrotate.d/pushgate",
                        "/etc/systemd/system/multi-user.target.wants/pushgate.service") + UNIT_PATHS
            if os.path.lexists(p)]
    assert not left, f"left after purge: {left}"
    overrides = run(["dpkg-statoverride", "--list"], timeout=60, check=False).stdout
    assert "pushgate" not in overrides, overrides
    if state.get("made_user"):
        for lookup in (pwd.getpwnam, grp.getgrnam):
            try:
                lookup("pushgate")
                raise AssertionError(f"{lookup.__name__}('pushgate') still answers")
            except KeyError:
                pass


tests.run(smsc=False, daemon=False)
