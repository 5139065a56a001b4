"""API Gateway HTTP API semantics of the local runtime: routing, payload 2.0 events, responses."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest

from turnstop_local.http_server import (
    MalformedResponse,
    RouteTable,
    build_authorizer_event,
    build_http_event,
    evaluate_authorizer_response,
    map_response,
)
from turnstop_local.template import Authorizer, Route

TABLE = RouteTable(
    [
        Route("GET", "/pets/dog/1", "Exact"),
        Route("GET", "/pets/dog/{id}", "Param"),
        Route("GET", "/pets/{proxy+}", "PetsGreedy"),
        Route("ANY", "/{proxy+}", "RootGreedy"),
        Route("ANY", "/things/{id}", "AnyThing"),
        Route("DELETE", "/things/{id}", "DeleteThing"),
        Route("GET", "/a/{x}/c", "ParamThenLiteral"),
        Route("GET", "/a/b/{y}", "LiteralThenParam"),
        Route("POST", "/v1/sessions/{id}/responses/{rid}/cancel", "Cancel"),
    ]
)


@pytest.mark.parametrize(
    ("method", "path", "function", "params"),
    [
        ("GET", "/pets/dog/1", "Exact", {}),
        ("GET", "/pets/dog/2", "Param", {"id": "2"}),
        ("GET", "/pets/cat/1", "PetsGreedy", {"proxy": "cat/1"}),
        ("POST", "/pets/dog/1", "RootGreedy", {"proxy": "pets/dog/1"}),  # no POST route: ANY greedy
        ("DELETE", "/things/7", "DeleteThing", {"id": "7"}),  # exact method before ANY
        ("PATCH", "/things/7", "AnyThing", {"id": "7"}),
        ("GET", "/a/b/c", "LiteralThenParam", {"y": "c"}),  # leftmost literal wins
        ("POST", "/v1/sessions/s%201/responses/r1/cancel", "Cancel", {"id": "s 1", "rid": "r1"}),
        ("POST", "/v1/sessions//responses/r1/cancel", "RootGreedy", {"proxy": "v1/sessions//responses/r1/cancel"}),
    ],
)
def test_most_specific_route_wins(method: str, path: str, function: str, params: dict[str, str]) -> None:
    match = TABLE.match(method, path)
    assert match is not None
    route, found = match
    assert (route.function_id, found) == (function, params)


def test_no_match_and_default_route() -> None:
    table = RouteTable([Route("GET", "/x", "X")])
    assert table.match("GET", "/y") is None
    assert table.match("GET", "/x/") is None  # {param} never matches an empty segment; literals are exact
    assert table.match("POST", "/x") is None
    with_default = RouteTable([Route("GET", "/x", "X"), Route("ANY", "$default", "D")])
    assert with_default.match("POST", "/anything")[0].function_id == "D"  # type: ignore[index]
    greedy_only = RouteTable([Route("ANY", "/{proxy+}", "G")])
    assert greedy_only.match("GET", "/") is None  # a greedy variable needs at least one segment


NOW = datetime(2026, 3, 12, 19, 3, 58, 123000, tzinfo=UTC)
ROUTE = Route("POST", "/v1/sessions/{id}/messages", "F")


def _event(**overrides: object) -> dict:
    args: dict = {
        "route": ROUTE,
        "method": "POST",
        "raw_path": "/v1/sessions/s1/messages",
        "raw_query": "a=1&a=2&b=x%20y&empty=",
        "headers": [
            ("Host", "127.0.0.1:3000"),
            ("Content-Type", "application/json"),
            ("X-Multi", "one"),
            ("x-multi", "two"),
            ("Cookie", "session_id=abc; theme=dark"),
            ("User-Agent", "test-agent"),
        ],
        "body": b'{"input": "hi"}',
        "path_parameters": {"id": "s1"},
        "source_ip": "127.0.0.9",
        "request_id": "REQ=",
        "now": NOW,
    }
    args.update(overrides)
    return build_http_event(**args)


def test_payload_v2_event_shape() -> None:
    event = _event()
    assert event["version"] == "2.0"
    assert event["routeKey"] == "POST /v1/sessions/{id}/messages"
    assert event["rawPath"] == "/v1/sessions/s1/messages"
    assert event["rawQueryString"] == "a=1&a=2&b=x%20y&empty="
    assert event["cookies"] == ["session_id=abc", "theme=dark"]
    assert "cookie" not in event["headers"]
    assert event["headers"]["x-multi"] == "one,two"
    assert event["headers"]["content-type"] == "application/json"
    assert event["queryStringParameters"] == {"a": "1,2", "b": "x y", "empty": ""}
    assert event["pathParameters"] == {"id": "s1"}
    assert event["body"] == '{"input": "hi"}'
    assert event["isBase64Encoded"] is False
    ctx = event["requestContext"]
    assert ctx["http"] == {
        "method": "POST",
        "path": "/v1/sessions/s1/messages",
        "protocol": "HTTP/1.1",
        "sourceIp": "127.0.0.9",
        "userAgent": "test-agent",
    }
    assert (ctx["routeKey"], ctx["stage"], ctx["requestId"]) == (ROUTE.route_key, "$default", "REQ=")
    assert ctx["time"] == "12/Mar/2026:19:03:58 +0000"
    assert ctx["timeEpoch"] == 1773342238123
    assert {"accountId", "apiId", "domainName", "domainPrefix"} <= set(ctx)
    assert "authorizer" not in ctx


def test_optional_fields_are_omitted() -> None:
    event = _event(raw_query="", headers=[("Host", "h")], body=b"", path_parameters={})
    for absent in ("cookies", "queryStringParameters", "pathParameters", "body"):
        assert absent not in event
    assert event["isBase64Encoded"] is False


@pytest.mark.parametrize(
    ("content_type", "body", "encoded"),
    [
        ("application/octet-stream", b"\x00\xff\x10", True),
        ("text/plain; charset=utf-8", b"plain", False),
        ("application/json", b"\xff\xfe", True),  # not UTF-8
        ("application/x-www-form-urlencoded", b"a=1", True),  # as API Gateway does
        (None, b"no content type", True),
    ],
)
def test_binary_bodies_are_base64(content_type: str | None, body: bytes, encoded: bool) -> None:
    headers = [("Host", "h")] + ([("Content-Type", content_type)] if content_type else [])
    event = _event(headers=headers, body=body)
    assert event["isBase64Encoded"] is encoded
    assert (base64.b64decode(event["body"]) if encoded else event["body"].encode()) == body


def test_authorizer_event() -> None:
    http_event = _event(headers=[("Host", "h"), ("Authorization", "Bearer k")])
    auth = Authorizer("Gate", "GateFn", "2.0", True, identity_headers=("Authorization",))
    event = build_authorizer_event(http_event, auth)
    assert event["type"] == "REQUEST" and event["version"] == "2.0"
    assert event["identitySource"] == ["Bearer k"]
    assert event["routeArn"].endswith("/$default/POST/v1/sessions/s1/messages")
    assert event["routeArn"].startswith("arn:aws:execute-api:us-east-1:")
    for key in ("routeKey", "rawPath", "rawQueryString", "headers", "queryStringParameters", "pathParameters"):
        assert event[key] == http_event[key]
    no_identity = build_authorizer_event(http_event, Authorizer("G", "F", "2.0", True))
    assert no_identity["identitySource"] == []


def test_authorizer_responses() -> None:
    assert evaluate_authorizer_response({"isAuthorized": True, "context": {"t": 1}}, simple=True) == (True, {"t": 1})
    assert evaluate_authorizer_response({"isAuthorized": False}, simple=True) == (False, None)
    with pytest.raises(MalformedResponse):
        evaluate_authorizer_response({"isAuthorized": "yes"}, simple=True)
    with pytest.raises(MalformedResponse):
        evaluate_authorizer_response(None, simple=True)
    policy = {"principalId": "p", "policyDocument": {"Statement": [{"Effect": "Allow", "Action": "*"}]}}
    assert evaluate_authorizer_response(policy, simple=False) == (True, None)


def test_response_mapping() -> None:
    response = map_response(
        {
            "statusCode": 201,
            "headers": {"Content-Type": "application/json", "X-A": 1},
            "multiValueHeaders": {"X-B": ["1", "2"]},
            "cookies": ["a=1; Path=/", "b=2"],
            "body": '{"ok":true}',
        }
    )
    assert response.status == 201
    assert response.body == b'{"ok":true}'
    assert ("X-A", "1") in response.headers
    assert [v for k, v in response.headers if k == "X-B"] == ["1", "2"]
    assert [v for k, v in response.headers if k == "set-cookie"] == ["a=1; Path=/", "b=2"]


def test_response_mapping_without_status_code_is_json() -> None:
    for result in ({"hello": "world"}, ["a"], "text", 3, None):
        response = map_response(result)
        assert response.status == 200
        assert ("content-type", "application/json") in response.headers
        assert json.loads(response.body) == result


def test_response_mapping_base64_and_defaults() -> None:
    response = map_response(
        {"statusCode": 200, "body": base64.b64encode(b"\x00\x01").decode(), "isBase64Encoded": True}
    )
    assert response.body == b"\x00\x01"
    assert ("content-type", "text/plain; charset=utf-8") in response.headers
    assert map_response({"statusCode": 204}).body == b""


@pytest.mark.parametrize(
    "bad",
    [{"statusCode": "abc"}, {"statusCode": 200, "body": {"not": "a string"}}, {"statusCode": 99}, {"statusCode": True}],
)
def test_malformed_responses(bad: dict) -> None:
    with pytest.raises(MalformedResponse):
        map_response(bad)
