"""t_openapi: docs/openapi.yaml against the daemon that serves it.

Real PostgreSQL, smsc-sim and pushgated.  The document is checked as
OpenAPI 3.1 as far as that can be done offline (version, responses on
every operation, unique operationIds, every $ref resolves, every schema a
valid JSON Schema 2020-12, path parameters declared).  Its paths are
checked against the route table: routes[] parsed from src/api.c, and the
sub-routes that devices.c, batches.c and api.c take apart under its
prefixes (their literal names parsed from those files); every entry but
the /v1/ fallback is described, no described path lands on the fallback,
and each method mask matches the document.  Then real traffic (messages,
search with cursors, account, reports, campaigns in JSON and CSV,
registration and verification, the device's own calls, the WebSocket
upgrade, Kannel's sendsms, the operator console's data, probes, the pages,
and the refusals: 400 naming a field, 401, 402, 403, 404, 405 with Allow,
410, 413, 426, 429)
has every answer validated: its status must be declared for the
operation, its body must match the schema of its content type, its
required headers must be there.  Every other method on every path is a
405 whose Allow lists exactly the documented methods, and every described
operation must have answered a success at least once.

The pages are served from a copy of web/ (a stand-in console.html when the
tree has none) and a stand-in [console] chart_js, so the answers do not
depend on what else is installed.  Needs python3-yaml and python3-jsonschema
(Debian's 4.10 or later: $refs are resolved here, not by the library).
"""
import base64
import collections
import datetime
import json
import os
import re
import sys
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import harness  # noqa: E402
import pushsvc as pushsvc_files  # noqa: E402  (the openssl VAPID key maker)
from harness import TAP  # noqa: E402

import jsonschema  # noqa: E402
import yaml  # noqa: E402

SRCDIR = os.path.abspath(os.environ.get(
    "PUSHGATE_SRCDIR", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")))
DOC_PATH = os.path.join(SRCDIR, "docs", "openapi.yaml")
MAX_BODY = 65536          # [server] max_body here: a 413 costs 64 KiB
PUSH_NUM = "821055500011"   # gets a verified device
CODE_NUM = "821055500021"   # asks for a code twice
SMS_NUM = "821055500031"    # no app: smsc-sim delivers it
METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH")

# Every (path, methods) pushgated serves, with a concrete path for probing: what the
# document must describe, no more, no less.  Prefix routes' sub-routes included.
SERVED = [
    ("/healthz", ("GET", "HEAD"), "/healthz"),
    ("/readyz", ("GET", "HEAD"), "/readyz"),
    ("/metrics", ("GET",), "/metrics"),
    ("/", ("GET", "HEAD"), "/"),
    ("/web/{file}", ("GET", "HEAD"), "/web/app.js"),
    ("/console", ("GET", "HEAD"), "/console"),
    ("/console/chart.js", ("GET", "HEAD"), "/console/chart.js"),
    ("/cgi-bin/sendsms", ("GET", "POST"), "/cgi-bin/sendsms"),
    ("/v1/batches", ("POST",), "/v1/batches"),
    ("/v1/batches/{id}", ("GET",), "/v1/batches/1"),
    ("/v1/batches/{id}/cancel", ("POST",), "/v1/batches/1/cancel"),
    ("/v1/device", ("GET",), "/v1/device"),
    ("/v1/device/wakeup", ("POST", "DELETE"), "/v1/device/wakeup"),
    ("/v1/device/acks", ("POST",), "/v1/device/acks"),
    ("/v1/device/pending", ("GET",), "/v1/device/pending"),
    ("/v1/device/webpush-key", ("GET", "HEAD"), "/v1/device/webpush-key"),
    ("/v1/devices", ("POST",), "/v1/devices"),
    ("/v1/devices/{id}/verify", ("POST",), "/v1/devices/1/verify"),
    ("/v1/devices/{id}", ("GET", "DELETE"), "/v1/devices/1"),
    ("/v1/messages", ("GET", "POST"), "/v1/messages"),
    ("/v1/messages/{id}", ("GET",), "/v1/messages/1"),
    ("/v1/reports/summary", ("GET",), "/v1/reports/summary"),
    ("/v1/account", ("GET",), "/v1/account"),
    ("/v1/operator/overview", ("GET",), "/v1/operator/overview"),
    ("/v1/operator/messages", ("GET",), "/v1/operator/messages"),
    ("/v1/operator/messages/{id}", ("GET",), "/v1/operator/messages/1"),
]
# routes[] entries that describe nothing: the 404 fallback under /v1/.
FALLBACKS = {"/v1/"}
# Where a prefix route's handler names its sub-routes: (prefix entry, file, regex of the literal,
# how a literal becomes a documented path).
SUBROUTE_SOURCES = [
    ("/v1/device/", "src/devices.c", r'strcmp\(what, "([^"]+)"\)', lambda s: "/v1/device/" + s),
    ("/v1/device/", "src/api.c", r'strcmp\(rest, "([^"]+)"\)', lambda s: "/v1/device/" + s),
    ("/v1/devices/", "src/api.c", r'strcmp\(slash, "(/[^"]+)"\)', lambda s: "/v1/devices/{id}" + s),
    ("/v1/batches/", "src/batches.c", r'strcmp\(tail, "(/[^"]+)"\)', lambda s: "/v1/batches/{id}" + s),
    ("/v1/operator/", "src/console.c", r'strcmp\(rest, "([^"]+)"\)', lambda s: "/v1/operator/" + s),
    ("/v1/operator/", "src/console.c", r'strncmp\(rest, "([^"/]+)/", ', lambda s: "/v1/operator/" + s + "/{id}"),
]
# The prefixes whose documented paths must each be named by a handler above.
SUBROUTE_PREFIXES = ("/v1/device/", "/v1/devices/{id}/", "/v1/batches/{id}/", "/v1/operator/")

tests = TAP()
ctx = {}
work = pushsvc_files.workdir("pushgate-openapi-")
VAPID_PATH, VAPID_PUBLIC = pushsvc_files.vapid_key(work)
# a P-256 point for a Web Push subscription that is never used (removed before any message)
os.mkdir(os.path.join(work, "sub"))
_, SUB_P256DH = pushsvc_files.vapid_key(os.path.join(work, "sub"))
# The pages are served from a copy of web/ with stand-ins for what the tree may lack (the console's
# page) and for the charting library (a Debian package): this test is about the HTTP answers, not them.
WEB_ROOT = os.path.join(work, "web")
os.mkdir(WEB_ROOT)
for _name in os.listdir(os.path.join(SRCDIR, "web")):
    if os.path.isfile(os.path.join(SRCDIR, "web", _name)):
        with open(os.path.join(SRCDIR, "web", _name), "rb") as _src, open(os.path.join(WEB_ROOT, _name), "wb") as _dst:
            _dst.write(_src.read())
if not os.path.exists(os.path.join(WEB_ROOT, "console.html")):
    with open(os.path.join(WEB_ROOT, "console.html"), "w", encoding="utf-8") as _f:
        _f.write("<!doctype html><title>console stand-in</title>\n")
CHART_JS = os.path.join(work, "chart.min.js")
with open(CHART_JS, "w", encoding="utf-8") as _f:
    _f.write("/* chart.js stand-in */\n")


# --- the document ---------------------------------------------------------------------

class _StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key given twice in one mapping (it would keep the last silently)."""


def _mapping(loader, node, deep=False):
    keys = set()
    for k, _ in node.value:
        key = loader.construct_object(k, deep=deep)
        if key in keys:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", k.start_mark)
        keys.add(key)
    return loader.construct_mapping(node, deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def load_doc():
    with open(DOC_PATH, encoding="utf-8") as f:
        return yaml.load(f, Loader=_StrictLoader)  # noqa: S506 (a SafeLoader)


def pointer(doc, ref):
    assert ref.startswith("#/"), f"only local $refs: {ref}"
    node = doc
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict) and part in node, f"$ref {ref} does not resolve (at {part!r})"
        node = node[part]
    return node


def inline(node, doc, seen=()):
    """node with every $ref replaced by what it points to (the document has no recursive schemas)."""
    if isinstance(node, dict):
        if "$ref" in node:
            ref = node["$ref"]
            assert ref not in seen, f"recursive $ref {ref}"
            target = inline(pointer(doc, ref), doc, seen + (ref,))
            rest = {k: inline(v, doc, seen) for k, v in node.items() if k != "$ref"}
            if not rest:
                return target
            if isinstance(target, dict) and not (set(rest) & set(target)):
                return {**target, **rest}
            return {"allOf": [target], **rest}
        return {k: inline(v, doc, seen) for k, v in node.items()}
    if isinstance(node, list):
        return [inline(v, doc, seen) for v in node]
    return node


def all_refs(node):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "$ref" and isinstance(v, str):
                yield v
            else:
                yield from all_refs(v)
    elif isinstance(node, list):
        for v in node:
            yield from all_refs(v)


FORMATS = jsonschema.FormatChecker(formats=())


@FORMATS.checks("date-time", raises=ValueError)
def _date_time(value):
    if not isinstance(value, str):
        return True
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})", value):
        raise ValueError(f"not RFC 3339: {value!r}")
    datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return True


def validate(schema, value, what):
    errors = sorted(jsonschema.Draft202012Validator(schema, format_checker=FORMATS).iter_errors(value),
                    key=lambda e: list(e.absolute_path))
    if errors:
        e = errors[0]
        best = jsonschema.exceptions.best_match(errors)
        raise AssertionError(f"{what}: {best.message} at {list(best.absolute_path)} "
                             f"({len(errors)} error(s); first at {list(e.absolute_path)}): "
                             f"{json.dumps(value)[:600]}")


def media(ctype):
    return (ctype or "").split(";", 1)[0].strip().lower()


class Api:
    """Calls pushgated and checks each answer against the document."""

    def __init__(self):
        raw = load_doc()
        self.doc = inline(raw, raw)
        self.seen = collections.defaultdict(set)   # (path, METHOD) -> statuses answered
        self.validated = 0
        self.statuses = collections.Counter()     # every validated answer's status

    def op(self, path, method):
        item = self.doc["paths"].get(path)
        assert item is not None, f"{path} is not in docs/openapi.yaml"
        op = item.get(method.lower())
        assert op is not None, f"{method} {path} is not in docs/openapi.yaml"
        return op

    def methods(self, path):
        return {m.upper() for m in self.doc["paths"][path] if m.upper() in METHODS}

    def check_response(self, resp, what, status, hdrs, raw, head=False):
        for name, h in (resp.get("headers") or {}).items():
            got = hdrs.get(name.lower())
            if h.get("required"):
                assert got is not None, f"{what}: header {name} is required, got {hdrs}"
            if got is not None and "schema" in h:
                validate(h["schema"], got, f"{what}: header {name}")
        self.statuses[status] += 1
        content = resp.get("content")
        if head or not content:
            assert raw == b"", f"{what}: no body is documented, got {raw[:200]!r}"
            self.validated += 1
            return None
        declared = {media(k): v for k, v in content.items()}
        mt = media(hdrs.get("content-type"))
        assert mt in declared, f"{what}: Content-Type {mt!r} is not one of {sorted(declared)}"
        schema = declared[mt].get("schema", {})
        if mt == "application/json":
            try:
                body = json.loads(raw)
            except ValueError as e:
                raise AssertionError(f"{what}: not JSON ({e}): {raw[:200]!r}")
        elif schema.get("contentEncoding") == "binary":
            body = None
        else:
            body = raw.decode("utf-8")
        if body is not None:
            validate(schema, body, f"{what} body")
        self.validated += 1
        return body

    def call(self, env, method, path, concrete=None, body=None, headers=None, key=harness._USE_ENV_KEY,
             expect=None, timeout=30, source=None):
        """One request; (status, headers, parsed JSON or None, raw).  expect: the status it must get."""
        op = self.op(path, method)
        kw = {"key": key, "timeout": timeout}
        if source:
            kw["source"] = source
        st, hdrs, parsed, raw = env.http(method, concrete or path, body, headers=headers, **kw)
        what = f"{method} {concrete or path} -> {st}"
        resp = op["responses"].get(str(st))
        assert resp is not None, (f"{what}: status {st} is not documented for {method} {path} "
                                  f"(documented: {sorted(op['responses'])}); body {raw[:300]!r}")
        self.check_response(resp, what, st, hdrs, raw, head=method == "HEAD")
        self.seen[(path, method)].add(st)
        if expect is not None:
            ok = st in expect if isinstance(expect, (tuple, set, list)) else st == expect
            assert ok, f"{what}: expected {expect}: {raw[:400]!r}"
        return st, hdrs, parsed, raw


try:
    api = Api()
except Exception as _e:   # a document that does not even load: one failed case, not a crash
    print(f"1..1\nnot ok 1 - docs/openapi.yaml loads and its $refs resolve\n# {_e!r}", flush=True)
    sys.exit(0)


def field_of(body):
    return body["error"].get("field") if isinstance(body, dict) and isinstance(body.get("error"), dict) else None


# --- the route table --------------------------------------------------------------------

def parse_routes():
    """routes[] of src/api.c: [(path, {methods} or None when the handler sorts them out)]."""
    with open(os.path.join(SRCDIR, "src", "api.c"), encoding="utf-8") as f:
        text = f.read()
    m = re.search(r"static const struct route routes\[\] = \{(.*?)\n\};", text, re.S)
    assert m, "routes[] not found in src/api.c"
    out = []
    for path, mask in re.findall(r'\{\s*"([^"]+)",\s*([^,]+),\s*BODY_\w+,\s*LIMIT_\w+,\s*\w+\s*\}', m.group(1)):
        mask = mask.strip()
        methods = None if mask == "0" else {p.strip()[2:] for p in mask.split("|")}
        out.append((path, methods))
    entries = len(re.findall(r'^\s*\{\s*"', m.group(1), re.M))
    assert len(out) == entries and len(out) >= 10, f"parsed {len(out)} of {entries} routes[] entries"
    return out


def find_route(routes, path):
    """api.c's find_route: the first entry matching exactly, or as a prefix when it ends in '/'."""
    for r, methods in routes:
        prefix = len(r) > 1 and r.endswith("/")
        if (path.startswith(r) if prefix else path == r):
            return r, methods
    return None, None


# --- set-up -----------------------------------------------------------------------------

def world(env):
    """Accounts, keys and what the cases share (made once)."""
    if ctx:
        assert "ops" in ctx, "the set-up failed in an earlier case"
        return ctx
    ops = env.ctl("account", "add", "--operator", "ops", check=True).stdout.strip()
    limited = env.create_account("limited", any_sender=False)
    for args in (("limit", "limited", "600"), ("requests", "limited", "1000"),
                 ("quota", "limited", "100000", "1000000"), ("balance", "limited", "set", "50"),
                 ("sender", "limited", "allow", "LTD"), ("urls", "limited", "example.com")):
        env.ctl("account", *args, check=True)
    rotated = env.ctl("account", "rotate", "limited", "3600", check=True).stdout.strip()
    broke = env.create_account("broke")
    env.ctl("account", "balance", "broke", "set", "0", check=True)
    slow = env.create_account("slow")
    env.ctl("account", "requests", "slow", "1", check=True)
    burst = env.create_account("burst")
    env.ctl("account", "limit", "burst", "1", check=True)
    ctx.update(ops=ops, limited=rotated, broke=broke, slow=slow, burst=burst)
    return ctx


def wait_final(env, message_ids, timeout=30):
    ids = ",".join(str(int(i)) for i in message_ids)
    env.wait_for(lambda: env.scalar(
        f"SELECT count(*) FROM recipients WHERE message_id IN ({ids}) AND final_at IS NULL") == "0",
        timeout=timeout, what=f"recipients of messages {ids} final")


# --- the document itself -----------------------------------------------------------------

@tests.case
def the_document_is_well_formed_openapi_3_1(env):
    raw = load_doc()
    assert re.fullmatch(r"3\.1\.\d+", str(raw.get("openapi"))), raw.get("openapi")
    assert raw["info"].get("title") and raw["info"].get("version"), raw["info"]
    for ref in set(all_refs(raw)):
        pointer(raw, ref)
    doc = inline(raw, raw)
    schemes = set(doc["components"]["securitySchemes"])
    tags = {t["name"] for t in doc.get("tags", [])}
    op_ids = collections.Counter()
    meta = jsonschema.Draft202012Validator
    for name, schema in doc["components"]["schemas"].items():
        meta.check_schema(schema)
    for path, item in doc["paths"].items():
        assert path.startswith("/"), path
        assert "x-other-methods" in item, f"{path}: no x-other-methods (the 405 of the other methods)"
        templated = set(re.findall(r"\{([^}]+)\}", path))
        ops = {m: o for m, o in item.items() if m in ("get", "put", "post", "delete", "options", "head",
                                                        "patch", "trace")}
        assert ops, f"{path}: no operation"
        for method, op in ops.items():
            where = f"{method.upper()} {path}"
            assert op.get("operationId"), f"{where}: no operationId"
            op_ids[op["operationId"]] += 1
            assert op.get("responses"), f"{where}: no responses"
            for status, resp in op["responses"].items():
                assert re.fullmatch(r"[1-5]\d\d", str(status)), f"{where}: response key {status!r}"
                assert isinstance(status, str), f"{where}: response key {status!r} must be a string"
                assert resp.get("description"), f"{where} {status}: no description"
                for mt, c in (resp.get("content") or {}).items():
                    meta.check_schema(c.get("schema", {}))
                for h in (resp.get("headers") or {}).values():
                    meta.check_schema(h.get("schema", {}))
            for level in (item.get("parameters", []), op.get("parameters", [])):
                keys = collections.Counter((p["name"], p["in"]) for p in level)
                assert all(n == 1 for n in keys.values()), f"{where}: a parameter declared twice: {keys}"
            # an operation's parameter replaces the path's of the same name and location
            params = {(p["name"], p["in"]): p for p in item.get("parameters", [])}
            params.update({(p["name"], p["in"]): p for p in op.get("parameters", [])})
            params = list(params.values())
            in_path = {p["name"] for p in params if p["in"] == "path"}
            assert in_path == templated, f"{where}: path parameters {in_path} != template {templated}"
            for p in params:
                assert p["in"] in ("path", "query", "header", "cookie"), f"{where}: {p}"
                assert p["in"] != "path" or p.get("required") is True, f"{where}: path parameter {p['name']}"
                meta.check_schema(p.get("schema", {}))
            for c in ((op.get("requestBody") or {}).get("content") or {}).values():
                meta.check_schema(c.get("schema", {}))
            for req in op.get("security", doc.get("security", [])):
                assert set(req) <= schemes, f"{where}: security {req}"
            assert set(op.get("tags", [])) <= tags, f"{where}: tags {op.get('tags')}"
    dupes = [k for k, n in op_ids.items() if n > 1]
    assert not dupes, f"operationIds used twice: {dupes}"
    templates = collections.Counter(re.sub(r"\{[^}]+\}", "{}", p) for p in doc["paths"])
    assert all(n == 1 for n in templates.values()), f"paths that differ only by parameter names: {templates}"


@tests.case
def the_document_describes_every_route_of_api_c_and_no_other(env):
    routes = parse_routes()
    described = {(p, m.upper()) for p, item in api.doc["paths"].items() for m in item
                 if m.upper() in METHODS or m in ("options", "trace")}
    served = {(p, m) for p, methods, _ in SERVED for m in methods}
    assert described == served, (f"described but not served: {sorted(described - served)}; "
                                 f"served but not described: {sorted(served - described)}")
    hit = collections.defaultdict(set)
    for path, methods, concrete in SERVED:
        entry, mask = find_route(routes, concrete)
        assert entry is not None, f"{concrete}: no routes[] entry takes it"
        assert entry not in FALLBACKS, f"{path} is served only by the {entry} fallback (a 404)"
        hit[entry] |= set(methods)
    for entry, mask in routes:
        if entry in FALLBACKS:
            continue
        assert entry in hit, f"routes[] entry {entry!r} is not described in docs/openapi.yaml"
        if mask is not None:
            assert hit[entry] == mask, f"routes[] {entry!r} takes {sorted(mask)}, the document {sorted(hit[entry])}"
    # the prefixes' sub-routes, from the handlers that take them apart
    for prefix, src, regex, to_path in SUBROUTE_SOURCES:
        assert prefix in {r for r, _ in routes}, f"{prefix} is no longer a routes[] prefix"
        with open(os.path.join(SRCDIR, src), encoding="utf-8") as f:
            names = re.findall(regex, f.read())
        assert names, f"no sub-route names found in {src} with {regex}"
        for n in names:
            assert to_path(n) in api.doc["paths"], f"{src} serves {to_path(n)}, not in docs/openapi.yaml"
    literal = {to_path(n) for prefix, src, regex, to_path in SUBROUTE_SOURCES
               for n in re.findall(regex, open(os.path.join(SRCDIR, src), encoding="utf-8").read())}
    for p in api.doc["paths"]:
        for prefix in SUBROUTE_PREFIXES:
            if p.startswith(prefix):
                assert p in literal, f"{p} is described but no handler names it"


# --- traffic ------------------------------------------------------------------------------

@tests.case
def probes_metrics_and_the_inbox_page(env):
    api.call(env, "GET", "/healthz", key=None, expect=200)
    api.call(env, "HEAD", "/healthz", key=None, expect=200)
    st, _, body, _ = api.call(env, "GET", "/readyz", key=None, expect=200)
    assert body["ready"] is True and body["smpp"] == "bound", body
    api.call(env, "HEAD", "/readyz", key=None, expect=200)
    st, hdrs, _, raw = api.call(env, "GET", "/metrics", key=None, expect=200)
    assert b"pushgate_db_up 1" in raw, raw[:300]
    api.call(env, "GET", "/", key=None, expect=200)
    api.call(env, "HEAD", "/", key=None, expect=200)
    for f in ("app.js", "app.css", "index.html", "sw.js"):
        api.call(env, "GET", "/web/{file}", f"/web/{f}", key=None, expect=200)
    api.call(env, "HEAD", "/web/{file}", "/web/app.js", key=None, expect=200)
    api.call(env, "GET", "/web/{file}", "/web/nothing-here.txt", key=None, expect=404)
    api.call(env, "GET", "/console", key=None, expect=200)
    api.call(env, "HEAD", "/console", key=None, expect=200)
    api.call(env, "GET", "/console/chart.js", key=None, expect=200)
    api.call(env, "HEAD", "/console/chart.js", key=None, expect=200)
    api.call(env, "HEAD", "/web/{file}", "/web/nothing-here.txt", key=None, expect=404)


@tests.case
def messages_are_sent_read_and_refused_as_documented(env):
    w = world(env)
    st, hdrs, sent, _ = api.call(env, "POST", "/v1/messages",
                                 body={"from": "ACME", "to": [SMS_NUM, "+821055500032", SMS_NUM],
                                       "text": "hello", "channels": ["sms"], "validity": 3600},
                                 headers={"Idempotency-Key": "openapi-1"}, expect=202)
    assert len(sent["recipients"]) == 2 and "idempotent-replayed" not in hdrs, (sent, hdrs)
    st, hdrs, again, _ = api.call(env, "POST", "/v1/messages",
                                  body={"from": "ACME", "to": [SMS_NUM, "+821055500032"], "text": "hello",
                                        "channels": ["sms"]},
                                  headers={"Idempotency-Key": "openapi-1"}, expect=202)
    assert again == sent and hdrs.get("idempotent-replayed") == "true", (again, hdrs)
    one = api.call(env, "POST", "/v1/messages", body={"from": "ACME", "to": "821055500039", "text": "fails"},
                   expect=202)[2]
    ctx["messages"] = [sent["id"], one["id"]]
    for body, field in [({"to": [SMS_NUM], "text": "x"}, "from"), ({"from": "ACME", "text": "x"}, "to"),
                        ({"from": "ACME", "to": ["12ab"], "text": "x"}, "to"),
                        ({"from": "ACME", "to": [SMS_NUM], "text": ""}, "text"),
                        ({"from": "ACME", "to": [SMS_NUM], "text": "x", "channels": ["fax"]}, "channels"),
                        ({"from": "ACME", "to": [SMS_NUM], "text": "x", "purpose": "SPAM"}, "purpose"),
                        ({"from": "ACME", "to": [SMS_NUM], "text": "x", "send_at": "tomorrow"}, "send_at"),
                        ({"from": "ACME", "to": [SMS_NUM], "text": "x", "validity": 5}, "validity")]:
        st, _, err, raw = api.call(env, "POST", "/v1/messages", body=body, expect=400)
        assert field_of(err) == field and err["error"]["code"] == "invalid_field", (body, raw)
    st, _, err, _ = api.call(env, "POST", "/v1/messages", body="{not json", expect=400)
    assert err["error"]["code"] == "invalid_json", err
    st, _, err, _ = api.call(env, "POST", "/v1/messages", body={"from": "ACME", "to": [SMS_NUM], "text": "x"},
                             headers={"Idempotency-Key": "has space"}, expect=400)
    assert field_of(err) == "Idempotency-Key", err
    api.call(env, "POST", "/v1/messages", body={"from": "ACME", "to": [SMS_NUM], "text": "x"}, key=None,
             expect=401)
    api.call(env, "POST", "/v1/messages", body={"from": "ACME", "to": [SMS_NUM], "text": "x"},
             key="pk_not_a_key", expect=401)
    st, _, err, _ = api.call(env, "POST", "/v1/messages",
                             body={"from": "ACME", "to": [SMS_NUM], "text": "z" * (MAX_BODY + 1024)}, expect=413)
    assert err["error"]["code"] == "too_large", err
    # the account's limits, decided in the intake
    api.call(env, "POST", "/v1/messages", body={"from": "ACME", "to": [SMS_NUM], "text": "x"}, key=w["broke"],
             expect=402)
    st, _, err, _ = api.call(env, "POST", "/v1/messages", body={"from": "NOTLTD", "to": [SMS_NUM], "text": "x"},
                             key=w["limited"], expect=403)
    assert err["error"] == {**err["error"], "code": "sender_not_allowed", "field": "from"}, err
    st, _, err, _ = api.call(env, "POST", "/v1/messages",
                             body={"from": "LTD", "to": [SMS_NUM], "text": "x",
                                   "callback_url": "http://elsewhere.invalid/hook"}, key=w["limited"], expect=403)
    assert err["error"]["code"] == "url_not_allowed" and field_of(err) == "callback_url", err
    st, hdrs, err, _ = api.call(env, "POST", "/v1/messages",
                                body={"from": "ACME", "to": [SMS_NUM, "821055500033"], "text": "x"},
                                key=w["burst"], expect=429)
    assert err["error"]["code"] == "rate_limited" and hdrs.get("retry-after"), (err, hdrs)
    # read back, once every SMS is final
    wait_final(env, ctx["messages"])
    st, _, msg, _ = api.call(env, "GET", "/v1/messages/{id}", f"/v1/messages/{sent['id']}", expect=200)
    assert [r["state"] for r in msg["recipients"]] == ["SMS_DELIVERED", "SMS_DELIVERED"], msg
    assert {e["kind"] for r in msg["recipients"] for e in r["events"]} >= {"state", "receipt"}, msg
    st, _, msg, _ = api.call(env, "GET", "/v1/messages/{id}", f"/v1/messages/{one['id']}", expect=200)
    assert msg["recipients"][0]["state"] == "SMS_FAILED" and msg["recipients"][0]["error_code"] == 1, msg
    api.call(env, "GET", "/v1/messages/{id}", "/v1/messages/999999999", expect=404)
    api.call(env, "GET", "/v1/messages/{id}", f"/v1/messages/{sent['id']}", key=w["broke"], expect=404)
    api.call(env, "GET", "/v1/messages/{id}", f"/v1/messages/{sent['id']}", key=None, expect=401)


@tests.case
def search_pages_with_cursors_and_refuses_bad_parameters(env):
    world(env)
    assert "messages" in ctx, "the messages case failed"
    more = [api.call(env, "POST", "/v1/messages", body={"from": "BANK", "to": [SMS_NUM], "text": f"more {i}"},
                     expect=202)[2]["id"] for i in range(2)]
    wait_final(env, more)

    def page(**q):
        return api.call(env, "GET", "/v1/messages", "/v1/messages?" + urllib.parse.urlencode(q), expect=200)[2]

    for q in ({"to": SMS_NUM, "limit": 1}, {"limit": 1}, {"limit": 2, "state": "SMS_DELIVERED"}):
        got, body = [], page(**q)
        for _ in range(20):
            got += [r["id"] for r in body["recipients"]]
            if body["next_cursor"] is None:
                break
            body = page(**q, cursor=body["next_cursor"])
        assert len(got) >= 3 and len(got) == len(set(got)), (q, got)
        # by number: newest recipient first (by account the order is the messages' time)
        assert "to" not in q or got == sorted(got, reverse=True), (q, got)
    assert page(since="2999-01-01") == {"recipients": [], "next_cursor": None}
    page(**{"from": "ACME", "since": "2000-01-01T00:00:00Z", "until": "2999-01-01"})
    for q, field in [({"state": "NOPE"}, "state"), ({"limit": "0"}, "limit"), ({"to": "12ab"}, "to"),
                     ({"cursor": "zzz"}, "cursor"), ({"since": "yesterday"}, "since")]:
        st, _, err, raw = api.call(env, "GET", "/v1/messages", "/v1/messages?" + urllib.parse.urlencode(q),
                                   expect=400)
        assert field_of(err) == field, (q, raw)
    st, _, err, _ = api.call(env, "GET", "/v1/messages", "/v1/messages?color=red", expect=400)
    assert field_of(err) is None, err
    api.call(env, "GET", "/v1/messages", key=None, expect=401)


@tests.case
def account_and_report_summary(env):
    w = world(env)
    st, _, acct, _ = api.call(env, "GET", "/v1/account", expect=200)
    assert acct["name"] == "test" and acct["balance"] is None and acct["url_hosts"] is None, acct
    st, _, acct, _ = api.call(env, "GET", "/v1/account", key=w["limited"], expect=200)
    assert acct["limits"]["recipients_per_minute"] == 600 and acct["balance"] == 50, acct
    assert acct["senders"] == {"policy": "listed", "approved": ["LTD"]} and acct["url_hosts"] == ["example.com"], acct
    assert acct["previous_key_until"] is not None, acct
    api.call(env, "GET", "/v1/account", key=None, expect=401)
    api.call(env, "GET", "/v1/account", key=w["slow"], expect=200)
    st, hdrs, _, _ = api.call(env, "GET", "/v1/account", key=w["slow"], expect=429)
    assert hdrs.get("retry-after"), hdrs

    def summary(key=harness._USE_ENV_KEY, expect=200, **q):
        path = "/v1/reports/summary" + ("?" + urllib.parse.urlencode(q) if q else "")
        return api.call(env, "GET", "/v1/reports/summary", path, key=key, expect=expect)[2]

    env.ctl("rollup", check=True, timeout=180)   # reports read the rollups: bring them up to now
    s = summary()
    assert s["account"] == "test" and s["batch"] is None and s["recipients"] >= 3 and s["as_of"], s
    assert s["sms_delivered"] >= 2 and s["push_share"] == 0 and s["latency_ms"]["sms"]["p50"] is not None, s
    summary(since="2000-01-01")
    summary(since="2000-01-01T00:00:00+09:00")
    assert field_of(summary(since="last week", expect=400)) == "since"
    assert field_of(summary(batch="x", expect=400)) == "batch"
    assert field_of(summary(colour="red", expect=400)) is None
    assert field_of(summary(batch="999999999", expect=404)) == "batch"
    assert field_of(summary(account="test", expect=403)) == "account"
    summary(key=None, expect=401)
    assert summary(key=w["ops"], account="test")["account"] == "test"
    assert summary(key=w["ops"])["account"] is None
    assert field_of(summary(key=w["ops"], account="nobody", expect=404)) == "account"


@tests.case
def campaigns_in_json_and_csv_and_their_cancel(env):
    world(env)
    later = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=1)).strftime(
        "%Y-%m-%dT%H:%M:%SZ")
    st, _, b, _ = api.call(env, "POST", "/v1/batches",
                           body={"from": "SHOP", "text": "Hi {name}, order {order}", "name": "openapi",
                                 "send_at": later,
                                 "recipients": [{"to": "821055500101", "name": "Kim", "order": 111},
                                                {"to": "821055500102", "name": "Lee", "order": 112.5},
                                                {"to": "82105550010x", "name": "Bad", "order": 1},
                                                {"to": "821055500103", "order": 113}]},
                           expect=202)
    assert b["total"] == 2 and b["rejected_count"] == 2, b
    assert [(r["index"], r["field"]) for r in b["rejected"]] == [(2, "to"), (3, "name")], b
    scheduled = b["id"]
    csv = "to,name\r\n821055500111,Kim\r\n8210555001xx,Bad\r\n821055500112,\"Park, Ji\"\r\n"
    q = urllib.parse.urlencode({"from": "SHOP", "text": "Hi {name}", "channels": "sms"}, quote_via=urllib.parse.quote)
    st, _, c, _ = api.call(env, "POST", "/v1/batches", f"/v1/batches?{q}", body=csv.encode(),
                           headers={"Content-Type": "text/csv"}, expect=202)
    assert c["total"] == 2 and [(r["line"], r["field"]) for r in c["rejected"]] == [(3, "to")], c
    st, _, e, _ = api.call(env, "POST", "/v1/batches",
                           body={"from": "SHOP", "text": "x", "recipients": [{"to": "nope"}, {"name": "x"}]},
                           expect=400)
    assert field_of(e) == "recipients" and e["rejected_count"] == 2, e
    st, _, e, _ = api.call(env, "POST", "/v1/batches", body="to\n821055500121\n",
                           headers={"Content-Type": "application/xml"}, expect=400)
    assert field_of(e) == "Content-Type", e
    st, _, e, _ = api.call(env, "POST", "/v1/batches", f"/v1/batches?{q}", body=b"name\r\nKim\r\n",
                           headers={"Content-Type": "text/csv"}, expect=400)
    assert field_of(e) is not None, e
    api.call(env, "POST", "/v1/batches", body={"from": "SHOP", "text": "x", "recipients": [{"to": SMS_NUM}]},
             key=None, expect=401)
    # progress, the CSV campaign to its end, the scheduled one canceled
    st, _, g, _ = api.call(env, "GET", "/v1/batches/{id}", f"/v1/batches/{scheduled}", expect=200)
    assert g["state"] == "RUNNING" and g["by_state"] == {"SCHEDULED": 2}, g
    env.wait_for(lambda: api.call(env, "GET", "/v1/batches/{id}", f"/v1/batches/{c['id']}",
                                  expect=200)[2]["state"] == "DONE", timeout=30, what="the CSV campaign DONE")
    st, _, x, _ = api.call(env, "POST", "/v1/batches/{id}/cancel", f"/v1/batches/{scheduled}/cancel", expect=200)
    assert x == {"id": scheduled, "state": "CANCELED", "changed": True, "canceled": 2}, x
    st, _, x, _ = api.call(env, "POST", "/v1/batches/{id}/cancel", f"/v1/batches/{scheduled}/cancel", expect=200)
    assert x["changed"] is False and x["canceled"] == 0, x
    st, _, g, _ = api.call(env, "GET", "/v1/batches/{id}", f"/v1/batches/{scheduled}", expect=200)
    assert g["state"] == "CANCELED" and g["canceled_at"] and g["by_state"] == {"CANCELED": 2}, g
    api.call(env, "GET", "/v1/batches/{id}", "/v1/batches/999999999", expect=404)
    api.call(env, "GET", "/v1/batches/{id}", f"/v1/batches/{scheduled}", key=ctx["broke"], expect=404)
    api.call(env, "POST", "/v1/batches/{id}/cancel", "/v1/batches/999999999/cancel", expect=404)
    api.call(env, "GET", "/v1/batches/{id}", f"/v1/batches/{scheduled}", key=None, expect=401)
    # the report of one batch (its whole history)
    st, _, s, _ = api.call(env, "GET", "/v1/reports/summary", f"/v1/reports/summary?batch={c['id']}", expect=200)
    assert s["batch"] == c["id"] and s["recipients"] == 2 and s["sms_delivered"] == 2, s
    ctx["batch"] = scheduled


@tests.case
def registration_verification_and_operators_view(env):
    w = world(env)
    st, _, reg, _ = api.call(env, "POST", "/v1/devices", body={"msisdn": PUSH_NUM, "platform": "web"}, key=None,
                             expect=202)
    wrong = "000000" if reg["code"] != "000000" else "111111"
    st, _, e, _ = api.call(env, "POST", "/v1/devices/{id}/verify", f"/v1/devices/{reg['device_id']}/verify",
                           body={"code": wrong}, key=None, expect=400)
    assert e["error"]["code"] == "invalid_code" and field_of(e) == "code", e
    st, _, e, _ = api.call(env, "POST", "/v1/devices/{id}/verify", f"/v1/devices/{reg['device_id']}/verify",
                           body={"code": "12345"}, key=None, expect=400)
    assert e["error"]["code"] == "invalid_field", e
    st, _, v, _ = api.call(env, "POST", "/v1/devices/{id}/verify", f"/v1/devices/{reg['device_id']}/verify",
                           body={"code": reg["code"]}, key=None, expect=200)
    assert v["msisdn"] == PUSH_NUM and v["device_id"] == reg["device_id"], v
    ctx["device"] = (v["device_id"], v["token"])
    api.call(env, "POST", "/v1/devices/{id}/verify", f"/v1/devices/{reg['device_id']}/verify",
             body={"code": reg["code"]}, key=None, expect=404)
    # a code the registration can't have: void after five tries
    st, _, r2, _ = api.call(env, "POST", "/v1/devices", body={"msisdn": CODE_NUM}, key=None, expect=202)
    bad = [c for c in ("000001", "000002", "000003", "000004", "000005", "000006") if c != r2["code"]][:5]
    for c in bad:
        api.call(env, "POST", "/v1/devices/{id}/verify", f"/v1/devices/{r2['device_id']}/verify",
                 body={"code": c}, key=None, expect=(400, 410))
    st, _, e, _ = api.call(env, "POST", "/v1/devices/{id}/verify", f"/v1/devices/{r2['device_id']}/verify",
                           body={"code": r2["code"]}, key=None, expect=410)
    st, hdrs, e, _ = api.call(env, "POST", "/v1/devices", body={"msisdn": CODE_NUM}, key=None, expect=429)
    assert field_of(e) == "msisdn" and hdrs.get("retry-after"), (e, hdrs)
    for body, field in [({"msisdn": "12ab"}, "msisdn"), ({"platform": "web"}, "msisdn"),
                        ({"msisdn": "821055500041", "platform": 7}, "platform")]:
        st, _, e, _ = api.call(env, "POST", "/v1/devices", body=body, key=None, expect=400)
        assert field_of(e) == field, (body, e)
    api.call(env, "POST", "/v1/devices", body="[1]", key=None, expect=400)
    st, _, e, _ = api.call(env, "POST", "/v1/devices", body={"msisdn": "15555550100"}, key=None, expect=403)
    assert field_of(e) == "msisdn", e
    api.call(env, "POST", "/v1/devices", body={"msisdn": "821055500051", "platform": "x" * 5000}, key=None,
             expect=413)
    api.call(env, "POST", "/v1/devices/{id}/verify", "/v1/devices/12345/verify", body={"code": "123456"},
             key=None, expect=404)
    # operators list a number's devices
    st, _, lst, _ = api.call(env, "GET", "/v1/devices/{id}", f"/v1/devices/{PUSH_NUM}", key=w["ops"], expect=200)
    assert [d["id"] for d in lst["devices"]] == [reg["device_id"]] and lst["devices"][0]["connected"] is False, lst
    api.call(env, "GET", "/v1/devices/{id}", f"/v1/devices/{PUSH_NUM}", expect=403)
    api.call(env, "GET", "/v1/devices/{id}", f"/v1/devices/{PUSH_NUM}", key=None, expect=401)
    api.call(env, "GET", "/v1/devices/{id}", "/v1/devices/12", key=w["ops"], expect=404)


@tests.case
def a_device_calls_with_its_token(env):
    assert "device" in ctx, "the registration case failed"
    dev, token = ctx["device"]
    tok = {"Authorization": f"Bearer {token}"}
    st, _, k, _ = api.call(env, "GET", "/v1/device/webpush-key", key=None, expect=200)
    assert k["public_key"] == VAPID_PUBLIC, k
    api.call(env, "HEAD", "/v1/device/webpush-key", key=None, expect=200)
    st, _, p, _ = api.call(env, "GET", "/v1/device/pending", key=None, headers=tok, expect=200)
    assert p == {"messages": []}, p
    sub = {"endpoint": "https://push.example.com/sub/openapi", "expirationTime": None,
           "keys": {"p256dh": SUB_P256DH, "auth": base64.urlsafe_b64encode(os.urandom(16)).rstrip(b"=").decode()}}
    api.call(env, "POST", "/v1/device/wakeup", body=sub, key=None, headers=tok, expect=204)
    for body, field in [({**sub, "kind": "carrier-pigeon"}, "kind"), ({**sub, "endpoint": "http://x.example/"},
                                                                       "endpoint"),
                        ({**sub, "keys": {"p256dh": "AAAA", "auth": sub["keys"]["auth"]}}, "keys.p256dh"),
                        ({"kind": "fcm", "token": "abc"}, "kind")]:
        st, _, e, _ = api.call(env, "POST", "/v1/device/wakeup", body=body, key=None, headers=tok, expect=400)
        assert field_of(e) == field, (body, e)
    api.call(env, "POST", "/v1/device/wakeup", body=sub, key=None, headers={"Authorization": "Bearer dt_nope"},
             expect=401)
    api.call(env, "DELETE", "/v1/device/wakeup", key=None, headers=tok, expect=204)
    api.call(env, "DELETE", "/v1/device/wakeup", key=None, headers=tok, expect=404)
    # a message waiting for the app (no SMS for it), fetched and acked over HTTP
    st, _, m, _ = api.call(env, "POST", "/v1/messages",
                           body={"from": "ACME", "to": [PUSH_NUM], "text": "for the app", "channels": ["push"],
                                 "push_timeout": 600}, expect=202)
    rid = m["recipients"][0]["id"]
    st, _, p, _ = api.call(env, "GET", "/v1/device/pending", key=None, headers=tok, expect=200)
    assert [x["id"] for x in p["messages"]] == [rid] and p["messages"][0]["text"] == "for the app", p
    st, _, a, _ = api.call(env, "POST", "/v1/device/acks", body={"ids": [rid]}, key=None, headers=tok, expect=200)
    assert a == {"acked": 1}, a
    st, _, a, _ = api.call(env, "POST", "/v1/device/acks", body={"ids": [rid]}, key=None, headers=tok, expect=200)
    assert a == {"acked": 0}, a
    for body in ({"ids": []}, {"ids": [0]}, {"ids": "1"}):
        st, _, e, _ = api.call(env, "POST", "/v1/device/acks", body=body, key=None, headers=tok, expect=400)
        assert field_of(e) == "ids", e
    api.call(env, "POST", "/v1/device/acks", body={"ids": [rid]}, key=None, expect=401)
    api.call(env, "GET", "/v1/device/pending", key=None, expect=401)
    st, _, msg, _ = api.call(env, "GET", "/v1/messages/{id}", f"/v1/messages/{m['id']}", expect=200)
    assert msg["recipients"][0]["state"] == "PUSH_DELIVERED" and msg["recipients"][0]["channel"] == "push", msg
    # the WebSocket: upgraded, or 426 without the upgrade
    ws_key = base64.b64encode(os.urandom(16)).decode()
    st, hdrs, _, _ = api.call(env, "GET", "/v1/device", key=None, expect=101,
                              headers={"Upgrade": "websocket", "Connection": "Upgrade",
                                       "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": ws_key})
    api.call(env, "GET", "/v1/device", key=None, expect=426)
    api.call(env, "GET", "/v1/device", key=None, expect=400,
             headers={"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13"})
    # logout
    api.call(env, "DELETE", "/v1/devices/{id}", f"/v1/devices/{dev}", key=None, expect=401)
    api.call(env, "DELETE", "/v1/devices/{id}", f"/v1/devices/{dev}", key=None, headers=tok, expect=204)
    api.call(env, "DELETE", "/v1/devices/{id}", f"/v1/devices/{dev}", key=None, headers=tok, expect=404)
    api.call(env, "GET", "/v1/device/pending", key=None, headers=tok, expect=401)


@tests.case
def kannel_sendsms_answers_as_documented(env):
    w = world(env)

    def q(**p):
        return "/cgi-bin/sendsms?" + urllib.parse.urlencode(p)

    good = {"username": "test", "password": env.key, "from": "ACME", "to": "821055500061 12ab", "text": "hi"}
    st, _, _, raw = api.call(env, "GET", "/cgi-bin/sendsms", q(**good), key=None, expect=202)
    assert raw.startswith(b"0: Accepted for delivery Denied receivers are:"), raw
    form = urllib.parse.urlencode({**good, "to": "821055500062", "channels": "sms"}).encode()
    api.call(env, "POST", "/cgi-bin/sendsms", body=form, key=None,
             headers={"Content-Type": "application/x-www-form-urlencoded"}, expect=202)
    api.call(env, "POST", "/cgi-bin/sendsms", q(username="test", password=env.key, **{"from": "ACME"},
                                                  to="821055500063"),
             body=b"raw text", key=None, headers={"Content-Type": "text/plain; charset=utf-8"}, expect=202)
    st, _, _, raw = api.call(env, "GET", "/cgi-bin/sendsms", q(**{**good, "password": "pk_wrong"}), key=None,
                             expect=403)
    st, _, _, raw = api.call(env, "GET", "/cgi-bin/sendsms", q(**{k: v for k, v in good.items() if k != "to"}),
                             key=None, expect=400)
    assert raw == b"Missing receiver number, rejected", raw
    api.call(env, "GET", "/cgi-bin/sendsms", q(**{**good, "dlr-mask": "99"}), key=None, expect=400)
    api.call(env, "POST", "/cgi-bin/sendsms", body=b"<xml/>", key=None,
             headers={"Content-Type": "application/xml"}, expect=400)
    api.call(env, "GET", "/cgi-bin/sendsms", q(**{**good, "username": "broke", "password": w["broke"]}), key=None,
             expect=402)
    st, _, err, _ = api.call(env, "POST", "/cgi-bin/sendsms", body=b"text=" + b"z" * 70000, key=None,
                             headers={"Content-Type": "application/x-www-form-urlencoded"}, expect=413)


@tests.case
def the_operator_console_and_its_data(env):
    w = world(env)
    assert "messages" in ctx, "the messages case failed"
    ops = w["ops"]

    def get(path, concrete, key=ops, expect=200):
        return api.call(env, "GET", path, concrete, key=key, expect=expect)[2]

    env.ctl("rollup", check=True, timeout=180)   # the delivery series read the rollups: bring them up to now
    # the binds appear once this node has written its counters (every few seconds)
    o = env.wait_for(lambda: (lambda x: x if x["binds"] else None)(get("/v1/operator/overview",
                                                                       "/v1/operator/overview")),
                     timeout=30, what="the overview listing this node's bind")
    assert o["minutes"] == 60 and o["hours"] == 24 and o["by_channel"], o
    assert sum(r["recipients"] for r in o["by_sender"]) >= 3, o
    get("/v1/operator/overview", "/v1/operator/overview?minutes=5&hours=1")
    assert field_of(get("/v1/operator/overview", "/v1/operator/overview?minutes=1", expect=400)) == "minutes"
    assert field_of(get("/v1/operator/overview", "/v1/operator/overview?hours=169", expect=400)) == "hours"
    assert field_of(get("/v1/operator/overview", "/v1/operator/overview?colour=red", expect=400)) is None
    get("/v1/operator/overview", "/v1/operator/overview", key=env.key, expect=403)
    get("/v1/operator/overview", "/v1/operator/overview", key=None, expect=401)
    # the search across accounts, with its cursors
    seen, page = [], get("/v1/operator/messages", f"/v1/operator/messages?to={SMS_NUM}&limit=1")
    for _ in range(20):
        seen += [r["id"] for r in page["recipients"]]
        if page["next_cursor"] is None:
            break
        page = get("/v1/operator/messages", f"/v1/operator/messages?to={SMS_NUM}&limit=1&cursor={page['next_cursor']}")
    assert len(seen) >= 2 and seen == sorted(set(seen), reverse=True), seen
    page = get("/v1/operator/messages", "/v1/operator/messages?account=test&limit=2")
    assert len(page["recipients"]) == 2 and page["next_cursor"], page
    get("/v1/operator/messages", f"/v1/operator/messages?account=test&limit=2&cursor={page['next_cursor']}")
    get("/v1/operator/messages", "/v1/operator/messages")
    assert field_of(get("/v1/operator/messages", "/v1/operator/messages?account=nobody", expect=404)) == "account"
    assert field_of(get("/v1/operator/messages", "/v1/operator/messages?state=NOPE", expect=400)) == "state"
    get("/v1/operator/messages", "/v1/operator/messages", key=env.key, expect=403)
    # account= is the operators' alone
    assert field_of(get("/v1/messages", "/v1/messages?account=test", key=env.key, expect=400)) is None
    # one message of any account
    mid = ctx["messages"][0]
    m = get("/v1/operator/messages/{id}", f"/v1/operator/messages/{mid}")
    assert m["account"]["name"] == "test" and m["message"]["id"] == mid, m
    get("/v1/operator/messages/{id}", "/v1/operator/messages/999999999", expect=404)
    get("/v1/operator/messages/{id}", f"/v1/operator/messages/{mid}", key=env.key, expect=403)
    get("/v1/operator/messages/{id}", f"/v1/operator/messages/{mid}", key=None, expect=401)


@tests.case
def other_methods_are_405_with_allow_and_unknown_paths_404(env):
    world(env)
    for path, methods, concrete in SERVED:
        documented = api.methods(path)
        assert documented == set(methods), (path, documented)
        other = api.doc["paths"][path]["x-other-methods"]
        for m in METHODS:
            if m in documented:
                continue
            body = b"" if m in ("POST", "PUT", "PATCH") else None
            st, hdrs, _, raw = env.http(m, concrete, body, timeout=30)
            what = f"{m} {concrete} -> {st}"
            assert st == 405, f"{what}: expected 405: {raw[:300]!r}"
            api.check_response(other, what, st, hdrs, raw, head=m == "HEAD")
            allow = set(hdrs.get("allow", "").split(", "))
            assert allow == documented, f"{what}: Allow {hdrs.get('allow')!r}, documented {sorted(documented)}"
    not_found = inline(load_doc(), load_doc())["components"]["responses"]["NotFound"]
    for path in ("/nope", "/v1/nope", "/v1/device/nope", "/v1/batches/1/nope", "/v1/batches/x",
                 "/v1/devices/1/nope", "/v1/devices/x/verify", "/v1/messages/x", "/web/.hidden", "/index.html",
                 "/v1/devices/123456789012345678901", "/v1/operator/nope", "/v1/operator/messages/x",
                 "/console/nope", "/v1/operator"):
        st, hdrs, _, raw = env.http("GET", path, key=ctx["ops"])
        assert st == 404, f"GET {path}: {st} {raw[:200]!r}"
        api.check_response(not_found, f"GET {path} -> 404", st, hdrs, raw)


@tests.case
def every_described_operation_answered_a_success(env):
    missing = []
    for path, item in api.doc["paths"].items():
        for m in item:
            if m.upper() not in METHODS:
                continue
            ok = {s for s in api.seen.get((path, m.upper()), ()) if 100 <= s < 300}
            if not ok:
                missing.append(f"{m.upper()} {path} (answered {sorted(api.seen.get((path, m.upper()), ()))})")
    assert not missing, f"described but never served successfully: {missing}"
    print(f"# {api.validated} answers validated against docs/openapi.yaml, by status: "
          f"{dict(sorted(api.statuses.items()))}", flush=True)


tests.run(ini={"server": {"max_body": str(MAX_BODY)},
               "push": {"otp_echo": "yes", "web_root": WEB_ROOT},
               "console": {"chart_js": CHART_JS},
               "webpush": {"vapid_key": VAPID_PATH, "subject": "mailto:ops@example.com"}})
