"""t_http_errors: every way a request is refused, one TAP case each.

Each case checks the status, the JSON error code and field, and that
nothing reached PostgreSQL for the refused request. Limits are lowered in
the ini (max_body, max_recipients, max_text) so the cases are small and the
configuration is shown to be honoured.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from harness import TAP

tests = TAP()
MAX_BODY = 65536
MAX_RECIPIENTS = 10
MAX_TEXT = 160
GOOD = {"from": "PUSHGATE", "to": ["821012345670"], "text": "hello"}
_UNSET = object()


def stored(env):
    # Events are left out: earlier accepted messages still move through states.
    return env.sql("SELECT (SELECT count(*) FROM messages), (SELECT count(*) FROM recipients)")[0]


def refused(env, status, code, field=None, method="POST", path="/v1/messages",
            body=_UNSET, key=_UNSET, headers=None):
    before = stored(env)
    kwargs = {}
    if key is not _UNSET:
        kwargs["key"] = key
    got, hdrs, js, raw = env.http(method, path, GOOD if body is _UNSET else body,
                                  headers=headers, **kwargs)
    assert got == status, f"expected {status}, got {got}: {raw[:300]!r}"
    if code is not None:
        assert isinstance(js, dict) and isinstance(js.get("error"), dict), \
            f"error body is not {{\"error\": {{...}}}}: {raw[:300]!r}"
        err = js["error"]
        assert err.get("code") == code, f"code {err.get('code')!r} != {code!r}: {raw[:300]!r}"
        assert isinstance(err.get("message"), str) and err["message"], f"no message: {raw!r}"
        if field is not None:
            assert err.get("field") == field, f"field {err.get('field')!r} != {field!r}"
    assert hdrs.get("content-type", "").startswith("application/json") or code is None, hdrs
    after = stored(env)
    assert after == before, f"refused request changed the database: {before} -> {after}"
    return got, hdrs, js


def with_(**changes):
    body = dict(GOOD)
    for k, v in changes.items():
        if v is _UNSET:
            body.pop(k.rstrip("_"), None)
        else:
            body[k.rstrip("_")] = v
    return body


@tests.case
def unparsable_json_is_invalid_json(env):
    refused(env, 400, "invalid_json", body='{"from": "PUSHGATE", "to": [')


@tests.case
def empty_body_is_invalid_json(env):
    refused(env, 400, "invalid_json", body=b"")


@tests.case
def missing_from_is_invalid_field_from(env):
    refused(env, 400, "invalid_field", "from", body=with_(from_=_UNSET))


@tests.case
def empty_from_is_invalid_field_from(env):
    refused(env, 400, "invalid_field", "from", body=with_(from_=""))


@tests.case
def numeric_from_is_invalid_field_from(env):
    refused(env, 400, "invalid_field", "from", body=with_(from_=123))


@tests.case
def missing_to_is_invalid_field_to(env):
    refused(env, 400, "invalid_field", "to", body=with_(to=_UNSET))


@tests.case
def empty_to_is_invalid_field_to(env):
    refused(env, 400, "invalid_field", "to", body=with_(to=[]))


@tests.case
def to_as_a_number_is_invalid_field_to(env):
    refused(env, 400, "invalid_field", "to", body=with_(to=821012345670))


@tests.case
def to_as_an_object_is_invalid_field_to(env):
    refused(env, 400, "invalid_field", "to", body=with_(to={"number": "821012345670"}))


@tests.case
def to_entry_with_letters_is_invalid_field_to(env):
    refused(env, 400, "invalid_field", "to", body=with_(to=["8210123abc"]))


@tests.case
def to_entry_of_two_digits_is_invalid_field_to(env):
    refused(env, 400, "invalid_field", "to", body=with_(to=["12"]))


@tests.case
def to_entry_of_21_digits_is_invalid_field_to(env):
    refused(env, 400, "invalid_field", "to", body=with_(to=["1" * 21]))


@tests.case
def numeric_to_entry_is_invalid_field_to(env):
    refused(env, 400, "invalid_field", "to", body=with_(to=[821012345670]))


@tests.case
def one_bad_entry_refuses_the_whole_request(env):
    refused(env, 400, "invalid_field", "to", body=with_(to=["821012345670", "+", "821012345671"]))


@tests.case
def more_than_max_recipients_is_invalid_field_to(env):
    to = [f"8210123456{i:02d}" for i in range(MAX_RECIPIENTS + 1)]
    refused(env, 400, "invalid_field", "to", body=with_(to=to))


@tests.case
def missing_text_is_invalid_field_text(env):
    refused(env, 400, "invalid_field", "text", body=with_(text=_UNSET))


@tests.case
def empty_text_is_invalid_field_text(env):
    refused(env, 400, "invalid_field", "text", body=with_(text=""))


@tests.case
def non_string_text_is_invalid_field_text(env):
    refused(env, 400, "invalid_field", "text", body=with_(text=["hello"]))


@tests.case
def text_longer_than_max_text_is_invalid_field_text(env):
    refused(env, 400, "invalid_field", "text", body=with_(text="x" * (MAX_TEXT + 1)))


@tests.case
def limits_themselves_are_accepted(env):
    # The boundaries are inclusive: max recipients, max text, 3 and 20 digits, '+'.
    to = ["+821012345670", "123", "1" * 20] + [f"8210123456{i:02d}" for i in range(MAX_RECIPIENTS - 3)]
    body = env.send(to, text="y" * MAX_TEXT)
    assert [r["to"].lstrip("+") for r in body["recipients"]] == [t.lstrip("+") for t in to], body


@tests.case
def missing_key_is_unauthorized(env):
    refused(env, 401, "unauthorized", key=None)


@tests.case
def unknown_key_is_unauthorized(env):
    refused(env, 401, "unauthorized", key="pg_not_a_key_0000000000000000")


@tests.case
def non_bearer_authorization_is_unauthorized(env):
    refused(env, 401, "unauthorized", key=None, headers={"Authorization": "Basic dXNlcjpwYXNz"})


@tests.case
def status_without_key_is_unauthorized(env):
    msg = env.send(["821012345670"])
    refused(env, 401, "unauthorized", method="GET", path=f"/v1/messages/{msg['id']}",
            body=None, key=None)


@tests.case
def body_larger_than_max_body_is_too_large(env):
    big = with_(text="z" * (MAX_BODY + 1024))
    refused(env, 413, "too_large", body=big)


@tests.case
def unknown_message_id_is_not_found(env):
    refused(env, 404, "not_found", method="GET", path="/v1/messages/999999999", body=None)


@tests.case
def message_of_another_account_is_not_found(env):
    other = env.create_account("other")
    msg = env.send(["821012345670"], key=other)
    refused(env, 404, "not_found", method="GET", path=f"/v1/messages/{msg['id']}", body=None)
    env.message(msg["id"], key=other)  # its owner still sees it


@tests.case
def wrong_method_on_messages_is_405(env):
    refused(env, 405, None, method="DELETE", path="/v1/messages", body=None)


@tests.case
def wrong_method_on_a_message_is_405(env):
    msg = env.send(["821012345670"])
    refused(env, 405, None, method="PUT", path=f"/v1/messages/{msg['id']}", body=GOOD)


@tests.case
def a_405_names_the_methods_its_route_takes(env):
    # api.c's route table: each path's own Allow, not one list for every path
    msg = env.send(["821012345670"])
    for method, path, allow in (("DELETE", "/v1/messages", "GET, POST"),
                                ("PUT", f"/v1/messages/{msg['id']}", "GET"),
                                ("POST", "/healthz", "GET, HEAD"),
                                ("POST", "/readyz", "GET, HEAD"),
                                ("POST", "/metrics", "GET"),
                                ("POST", "/v1/account", "GET"),
                                ("DELETE", "/v1/reports/summary", "GET"),
                                ("GET", "/v1/batches", "POST"),          # batches.c's own routes too
                                ("DELETE", "/v1/batches/1", "GET"),
                                ("GET", "/v1/batches/1/cancel", "POST")):
        _, hdrs, js = refused(env, 405, "method_not_allowed", method=method, path=path, body=None)
        assert hdrs.get("allow") == allow, (method, path, hdrs.get("allow"))
        assert js["error"]["message"] == f"use {allow}", js
    # an unknown path is a 404; under /v1/ a body sent to it is not read without a key
    refused(env, 404, "not_found", method="GET", path="/v1/nothing", body=None)
    refused(env, 401, "unauthorized", method="POST", path="/v1/nothing", body=GOOD, key=None)


@tests.case
def database_down_is_unavailable_with_retry_after(env):
    env.stop_pg()
    try:
        got = env.wait_for(lambda: _post_status(env) == 503, timeout=15,
                           what="POST to answer 503 while PostgreSQL is down")
        status, hdrs, js, raw = env.http("POST", "/v1/messages", GOOD)
        assert status == 503, raw
        assert js["error"]["code"] == "unavailable", raw
        assert hdrs.get("retry-after", "").strip().isdigit(), hdrs
        assert got
    finally:
        env.start_pg()
    env.wait_for(lambda: _post_status(env) == 202, timeout=30,
                 what="POST to be accepted again after PostgreSQL is back")


def _post_status(env):
    return env.http("POST", "/v1/messages", GOOD)[0]


tests.run(dlr_delay_ms=50, ini={"server": {"max_body": MAX_BODY,
                                           "max_recipients": MAX_RECIPIENTS,
                                           "max_text": MAX_TEXT}})
