"""t_schema: sql/schema.sql is the schema the migrations make.

The migrations are applied to an empty database (the harness does), the
live schema is dumped (tools/schema-dump) and compared with the committed
sql/schema.sql, so a reader finds every table, index, function, trigger and
view as they are now in one file.  A migration that changes the schema
without the file regenerated fails here, with the difference.
"""
import difflib
import importlib.machinery
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from harness import TAP  # noqa: E402

tests = TAP()


@tests.case
def sql_schema_sql_is_the_schema_the_migrations_make(env):
    tool = importlib.machinery.SourceFileLoader("schema_dump", os.path.join(env.srcdir, "tools", "schema-dump")).load_module()
    live = tool.dump(env.conninfo)
    with open(os.path.join(env.srcdir, "sql", "schema.sql"), encoding="utf-8") as f:
        committed = f.read()
    if live != committed:
        diff = list(difflib.unified_diff(committed.splitlines(), live.splitlines(), "sql/schema.sql (committed)",
                                         "the migrations' schema", lineterm="", n=1))
        raise AssertionError("sql/schema.sql differs from what the migrations make; regenerate it with "
                             "tools/schema-dump CONNINFO > sql/schema.sql:\n" + "\n".join(diff[:80]))


tests.run(smsc=False, daemon=False)
