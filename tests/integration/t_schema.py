"""t_schema: sql/schema.sql is the schema the migrations make; sql/functions/ is the live code.

The migrations are applied to an empty database (the harness does), the
live schema is dumped (tools/schema-dump) and compared with the committed
sql/schema.sql, so a reader finds every table, index, function, trigger and
view as they are now in one file.  A migration that changes the schema
without the file regenerated fails here, with the difference.

Every function, trigger and view of the live schema has its file in
sql/functions/, and migrate applies those files again when one changed:
a function changed by hand in the database comes back from its file once
its checksum no longer matches, and a second migrate has nothing to do.
"""
import difflib
import importlib.machinery
import os
import subprocess
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from harness import TAP  # noqa: E402

tests = TAP()


def dump(env):
    tool = importlib.machinery.SourceFileLoader("schema_dump", os.path.join(env.srcdir, "tools", "schema-dump")).load_module()
    return tool.dump(env.conninfo)


@tests.case
def sql_schema_sql_is_the_schema_the_migrations_make(env):
    live = dump(env)
    with open(os.path.join(env.srcdir, "sql", "schema.sql"), encoding="utf-8") as f:
        committed = f.read()
    if live != committed:
        diff = list(difflib.unified_diff(committed.splitlines(), live.splitlines(), "sql/schema.sql (committed)",
                                         "the migrations' schema", lineterm="", n=1))
        raise AssertionError("sql/schema.sql differs from what the migrations make; regenerate it with "
                             "tools/schema-dump CONNINFO > sql/schema.sql:\n" + "\n".join(diff[:80]))


def function_files(env):
    return len([f for f in os.listdir(os.path.join(env.srcdir, "sql", "functions")) if f.endswith(".sql")])


@tests.case
def every_function_trigger_and_view_has_its_file_in_sql_functions(env):
    live = dump(env)
    names = set(re.findall(r"^CREATE (?:FUNCTION|VIEW) public\.(\w+)", live, re.M))
    # a file may hold a few small functions of one subject
    names = (names - {"recipient_final", "recipient_cancelable"}) | {"recipient_states"}
    names = (names - {"report_hist_bounds", "report_hist_bucket", "report_hist_at"}) | {"report_hist"}
    triggers = re.findall(r"^CREATE TRIGGER (\w+) .*? EXECUTE FUNCTION public\.(\w+)\(", live, re.M | re.S)
    assert len(names) >= 20 and len(triggers) >= 6, (names, triggers)
    fdir = os.path.join(env.srcdir, "sql", "functions")
    files = {f[:-4] for f in os.listdir(fdir) if f.endswith(".sql")}
    assert names - files == set(), f"no file in sql/functions/ for {sorted(names - files)}"
    assert files - names == set(), f"files in sql/functions/ for nothing live: {sorted(files - names)}"
    for trig, fn in triggers:
        with open(os.path.join(fdir, fn + ".sql"), encoding="utf-8") as f:
            assert re.search(rf"CREATE OR REPLACE TRIGGER {trig}\b", f.read()), f"{trig} is not in sql/functions/{fn}.sql"
    # every statement of every file can run again
    for name in sorted(files):
        with open(os.path.join(fdir, name + ".sql"), encoding="utf-8") as f:
            text = f.read()
        plain = re.findall(r"^CREATE (?!OR REPLACE )\w+", text, re.M)
        assert not plain, f"sql/functions/{name}.sql: {plain} cannot run twice (CREATE OR REPLACE)"
    # the order migrate applies them in (Makefile.am) names each file once
    with open(os.path.join(env.srcdir, "Makefile.am"), encoding="utf-8") as f:
        mk = f.read()
    listed = re.search(r"^SQL_FUNCTIONS = ((?:.*\\\n)*.*)$", mk, re.M).group(1).replace("\\\n", " ").split()
    assert sorted(listed) == sorted(files), f"Makefile.am SQL_FUNCTIONS vs sql/functions/: {sorted(set(listed) ^ files)}"
    assert env.sql("SELECT count(*) FROM schema_functions") == [(str(len(files)),)]
    # and no numbered migration defines one: each lives in one place
    sqldir = os.path.join(env.srcdir, "sql")
    for name in sorted(os.listdir(sqldir)):
        if re.match(r"\d{3}_.*\.sql$", name):
            with open(os.path.join(sqldir, name), encoding="utf-8") as f:
                found = re.findall(r"^\s*CREATE (?:OR REPLACE )?(?:FUNCTION|VIEW|TRIGGER) \w+", f.read(), re.M | re.I)
            assert not found, f"sql/{name} defines {found}: it belongs in sql/functions/"


@tests.case
def migrate_applies_the_functions_again_only_when_one_changed(env):
    r = env.ctl("migrate")
    assert r.returncode == 0 and "nothing to do" in r.stdout, r.stdout + r.stderr
    # someone changed a function by hand: the recorded checksum still matches the file, so it stays
    env.sql("CREATE OR REPLACE FUNCTION url_host(u text) RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT 'x' $$")
    assert env.scalar("SELECT url_host('https://a.example/')") == "x"
    r = env.ctl("migrate")
    assert "nothing to do" in r.stdout, r.stdout
    # a new binary whose url_host.sql differs (its checksum does): every file again, in one go
    env.sql("UPDATE schema_functions SET md5 = 'changed' WHERE name = 'url_host'")
    r = env.ctl("migrate")
    assert r.returncode == 0 and f"applied 0 migration(s) and {function_files(env)} function file(s)" in r.stdout, \
        r.stdout + r.stderr
    assert "NOTICE" not in r.stderr, r.stderr   # PostgreSQL's notices are not the operator's business
    assert env.scalar("SELECT url_host('https://a.example/')") == "a.example"
    assert env.scalar("SELECT count(*) FROM schema_functions WHERE md5 = 'changed'") == "0"
    r = env.ctl("migrate")
    assert "nothing to do" in r.stdout, r.stdout
    # applying every file again left the schema as it was
    with open(os.path.join(env.srcdir, "sql", "schema.sql"), encoding="utf-8") as f:
        assert dump(env) == f.read(), "the schema changed when sql/functions/ was applied again"


@tests.case
def a_failing_function_file_leaves_everything_as_it_was(env):
    # a file that fails midway (here: a view its file can no longer replace) rolls the whole set back
    env.sql("UPDATE schema_functions SET md5 = 'changed' WHERE name = 'accounts_kept'")
    env.sql("DROP VIEW report_by_route")
    env.sql("CREATE VIEW report_by_route AS SELECT 1 AS other")
    r = env.ctl("migrate")
    assert r.returncode == 1 and "sql/functions/report_by_route.sql failed" in r.stderr, r.stdout + r.stderr
    assert env.scalar("SELECT md5 FROM schema_functions WHERE name = 'accounts_kept'") == "changed"
    env.sql("DROP VIEW report_by_route")
    r = env.ctl("migrate")
    assert r.returncode == 0 and f"{function_files(env)} function file(s)" in r.stdout, r.stdout + r.stderr
    assert env.scalar("SELECT count(*) FROM report_by_route") is not None


@tests.case
def readme_lists_every_table(env):
    schema = dump(env)
    # the partitions of the history ranges (recipients_1, ...) are their tables' own
    parts = set(re.findall(r"^ALTER TABLE ONLY public\.\w+ ATTACH PARTITION public\.(\w+) ", schema, re.M))
    live = set(re.findall(r"^CREATE TABLE public\.(\w+) \(", schema, re.M)) - parts
    with open(os.path.join(env.srcdir, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    block = readme[readme.index("The tables, by what they hold:"):]
    block = block[:block.index("\n\n", block.index("| --- |"))]
    listed = {name for row in block.splitlines() if row.startswith("| ") for name in
              re.findall(r"`(\w+)`", row.split("|")[2])}
    assert listed == live, f"README's table list: missing {sorted(live - listed)}, gone {sorted(listed - live)}"


@tests.case
def the_final_and_cancelable_lists_are_the_same_in_c_and_sql(env):
    with open(os.path.join(env.srcdir, "src", "recipient.h"), encoding="utf-8") as f:
        h = f.read()

    def macro(name):
        m = re.search(r"#define " + name + r"\s+((?:\\\n|.)*?)\n(?!\t)", h)
        return set(re.findall(r"'([A-Z_]+)'", m.group(1)))
    final_c, cancelable_c = macro("RECIPIENT_FINAL_SQL"), macro("RECIPIENT_CANCELABLE_SQL")
    assert len(final_c) == 7 and len(cancelable_c) == 6, (final_c, cancelable_c)
    # every state the recipients table allows (its CHECK constraint)
    check = env.scalar("SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'recipients'::regclass"
                       " AND contype = 'c' AND pg_get_constraintdef(oid) LIKE '%state%'")
    states = set(re.findall(r"'([A-Z_]+)'::text", check))
    assert final_c | cancelable_c <= states and len(states) == 15, (states, check)
    arr = "ARRAY[" + ",".join(f"'{s}'" for s in sorted(states)) + "]"
    final_sql = {r[0] for r in env.sql(f"SELECT s FROM unnest({arr}) s WHERE recipient_final(s)")}
    cancelable_sql = {r[0] for r in env.sql(f"SELECT s FROM unnest({arr}) s WHERE recipient_cancelable(s)")}
    assert final_sql == final_c, f"final: SQL {sorted(final_sql)} vs C {sorted(final_c)}"
    assert cancelable_sql == cancelable_c, f"cancelable: SQL {sorted(cancelable_sql)} vs C {sorted(cancelable_c)}"


@tests.case
def an_online_migration_cut_short_runs_again_from_the_start(env):
    # migrate.c with two migrations of its own (tests/integration/migrate_check.c), on a database of its own
    env.psql("CREATE DATABASE migrate_check", dbname="postgres")
    prog = os.path.join(env.builddir, "tests", "integration", "migrate_check")
    conninfo = env.conninfo.replace("dbname=pushgate", "dbname=migrate_check")
    r = subprocess.run([prog, conninfo], capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert r.returncode == 0 and "result: ok" in r.stdout, r.stdout + r.stderr


tests.run(smsc=False, daemon=False)
