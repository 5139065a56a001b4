"""Parsing of the omni dialect's query strings, bodies and page tokens (pure, no AWS)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from turnstop.core import errors
from turnstop.dialects.omni import models, query
from turnstop.dialects.omni.wire import MISSING_ACCOUNT


def test_account_id_is_required_and_must_be_a_plain_non_negative_integer() -> None:
    assert query.account_from_query({"account_id": "42"}) == 42
    with pytest.raises(errors.InvalidRequest) as missing:
        query.account_from_query({})
    assert missing.value.message == MISSING_ACCOUNT
    for bad in ("x", "", "-3", "+3", "١", " 1", "1e3"):
        with pytest.raises(errors.InvalidRequest):
            query.account_from_query({"account_id": bad})


def test_page_size_defaults_and_bounds() -> None:
    assert query.page_size_from_query({}) == query.DEFAULT_PAGE_SIZE
    assert query.page_size_from_query({"page_size": "100"}) == 100
    for bad in ("0", "101", "ten"):
        with pytest.raises(errors.InvalidRequest):
            query.page_size_from_query({"page_size": bad})


def test_page_tokens_round_trip_and_garbage_is_rejected() -> None:
    tok = query.encode_token({"t": "x", "hi": 4, "n": 2})
    assert "=" not in tok and query.decode_token(tok, ("t", "n")) == {"t": "x", "hi": 4, "n": 2}
    for bad in ("!!!", query.encode_token({"t": "x"}), "bnVsbA"):
        with pytest.raises(errors.InvalidRequest):
            query.decode_token(bad, ("t", "n"))


def test_a_context_at_exactly_64_kib_is_accepted_and_one_byte_more_is_not() -> None:
    def body(n: int) -> bytes:
        ctx: dict[str, Any] = {"items": [{"data": {"b": ""}, "kind": "k", "label": "l"}]}
        overhead = len(json.dumps(ctx, separators=(",", ":")))
        ctx["items"][0]["data"]["b"] = "x" * (n - overhead)
        return json.dumps({"text": "hi", "account_id": 1, "context": ctx}).encode()

    models.parse_turn_body({"body": body(64 * 1024).decode()}, models.CreateMessage, 1 << 20)
    with pytest.raises(errors.InvalidRequest, match="64 KiB"):
        models.parse_turn_body({"body": body(64 * 1024 + 1).decode()}, models.CreateMessage, 1 << 20)


def test_ids_are_lowercase_uuids() -> None:
    assert query.is_id("0df65765-0f6c-4c3a-9a7e-3f2b8d1c4e5a")
    assert not query.is_id("0DF65765-0F6C-4C3A-9A7E-3F2B8D1C4E5A")
    assert not query.is_id("resp_abc")
