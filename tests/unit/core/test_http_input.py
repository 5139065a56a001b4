"""Request input that used to reach a 500: every parse failure is a domain error; request ids
and Idempotency-Keys are checked before use. No AWS."""

from __future__ import annotations

import json
import uuid

import pytest
from pydantic import BaseModel

from turnstop.auth import end_user_of
from turnstop.core import errors
from turnstop.http.api import request_id
from turnstop.http.body import BodyMessages, json_object, parse_body
from turnstop.idempotency.requests import idempotency_binding


class Body(BaseModel):
    message: str


def event(body: str | None, **headers: str) -> dict[str, object]:
    return {
        "body": body,
        "headers": headers,
        "rawPath": "/x",
        "requestContext": {"http": {"method": "POST"}, "requestId": "r-1"},
    }


@pytest.mark.parametrize(
    "body",
    [
        "[" * 5000 + "]" * 5000,  # nested past the parser's recursion limit
        '{"message": ' + "9" * 5000 + "}",  # an integer too long to convert
        "{not json",
        "[1, 2]",
        '{"message": 5}',
        '{"message": "x", "n": NaN}',  # not JSON, though Python's parser takes it
        '{"message": "x", "n": -Infinity}',
        '{"message": "x", "n": 1e999}',  # a number no store or client holds
        '{"message": "\\ud800"}',  # a lone surrogate: no UTF-8 for it, nothing can store it
    ],
    ids=["deep", "huge-int", "syntax", "not-object", "wrong-type", "nan", "infinity", "inf-float", "surrogate"],
)
def test_every_unparseable_body_is_an_invalid_request(body: str) -> None:
    with pytest.raises(errors.InvalidRequest):
        parse_body(event(body), Body, 1 << 20)


def test_escaped_pairs_and_plain_numbers_still_parse() -> None:
    assert parse_body(event('{"message": "\\ud83d\\ude00 1.5e3"}'), Body, 1 << 20).message == "\U0001f600 1.5e3"


@pytest.mark.parametrize("value", ["u" * 257, "bob\x7f", "b\u00f6b", "tab\there"])
def test_an_end_user_that_is_not_short_printable_ascii_is_an_invalid_request(value: str) -> None:
    with pytest.raises(errors.InvalidRequest):
        end_user_of({"x-on-behalf-of": value})


def test_an_end_user_is_taken_as_sent_and_none_when_absent() -> None:
    assert end_user_of({"x-on-behalf-of": "alice@example.com"}) == "alice@example.com"
    assert end_user_of({}) is None and end_user_of({"x-on-behalf-of": ""}) is None


@pytest.mark.parametrize("raw", [b"\xff\xfe{}", b"not base64 at all!"], ids=["not-utf8", "bad-base64"])
def test_a_binary_body_that_is_not_utf8_json_is_an_invalid_request(raw: bytes) -> None:
    import base64

    encoded = base64.b64encode(raw).decode() if raw.startswith(b"\xff") else raw.decode()
    with pytest.raises(errors.InvalidRequest):
        parse_body({**event(encoded), "isBase64Encoded": True}, Body, 1 << 20)


def test_a_body_over_the_limit_is_too_large_before_it_is_parsed() -> None:
    with pytest.raises(errors.PayloadTooLarge):
        json_object(event("[" * 10_000), 1_000)


def test_a_dialect_words_its_own_body_errors() -> None:
    messages = BodyMessages(malformed="bad: {error}", code="invalid_json")
    with pytest.raises(errors.InvalidRequest) as raised:
        json_object(event("{"), 100, messages)
    assert raised.value.message.startswith("bad: ") and raised.value.details == {"code": "invalid_json"}


@pytest.mark.parametrize("sent", ["abc\r\nSet-Cookie: x=1", "x" * 201, "", "caf\u00e9"])
def test_an_unsafe_request_id_is_replaced_never_echoed(sent: str) -> None:
    rid = request_id(event("{}", **{"x-request-id": sent}))
    assert rid != sent and str(uuid.UUID(rid)) == rid


def test_a_safe_request_id_is_echoed() -> None:
    assert request_id(event("{}", **{"x-request-id": "client-123_ABC.x"})) == "client-123_ABC.x"


def test_an_idempotency_key_fingerprint_ignores_whitespace_and_key_order_but_not_the_end_user() -> None:
    a = idempotency_binding(event(json.dumps({"a": 1, "b": 2}), **{"idempotency-key": "k"}), "t", None)
    b = idempotency_binding(event('{ "b": 2,  "a": 1 }', **{"idempotency-key": "k"}), "t", None)
    c = idempotency_binding(event(json.dumps({"a": 1, "b": 2}), **{"idempotency-key": "k"}), "t", "alice")
    assert a is not None and b is not None and c is not None
    assert a.fingerprint == b.fingerprint != c.fingerprint


@pytest.mark.parametrize("key", ["k" * 256, "line\nbreak"])
def test_an_oversized_or_unprintable_idempotency_key_is_refused(key: str) -> None:
    with pytest.raises(errors.InvalidRequest):
        idempotency_binding(event("{}", **{"idempotency-key": key}), "t", None)
