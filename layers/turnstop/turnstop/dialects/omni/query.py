"""The omni dialect's ids, query strings and page tokens, parsed with errors worded like the
seed's (serde/axum style). No request models here: the cancel function imports this alone."""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

from turnstop.auth import Principal
from turnstop.core import errors
from turnstop.dialects.omni.wire import FORBIDDEN, MISSING_ACCOUNT, QUERY_PREFIX
from turnstop.http.body import loads

MAX_ACCOUNT_ID = 2**63 - 1
DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
MAX_TOKEN_CHARS = 1024
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def authorize(principal: Principal, account_id: int) -> None:
    """The key may act for the account (403, decided before any read or write)."""
    if not principal.may_act_for(account_id):
        raise errors.Forbidden(FORBIDDEN)


def is_id(value: str) -> bool:
    """Thread, response and message ids are lowercase UUIDs; anything else is unknown."""
    return _UUID.fullmatch(value) is not None


def _query_int(query: dict[str, str], name: str, *, required: bool, lo: int, hi: int) -> int | None:
    raw = query.get(name)
    if raw is None:
        if required:
            raise errors.InvalidRequest(
                MISSING_ACCOUNT if name == "account_id" else QUERY_PREFIX + f"missing field `{name}`"
            )
        return None
    if raw == "":
        raise errors.InvalidRequest(QUERY_PREFIX + f"{name}: cannot parse integer from empty string")
    if not raw.isascii() or not raw.isdigit():
        raise errors.InvalidRequest(QUERY_PREFIX + f"{name}: invalid digit found in string")
    value = int(raw)
    if value > hi:
        raise errors.InvalidRequest(QUERY_PREFIX + f"{name}: number too large to fit in target type")
    if value < lo:
        raise errors.InvalidRequest(QUERY_PREFIX + f"{name}: must be at least {lo}")
    return value


def account_from_query(query: dict[str, str] | None) -> int:
    value = _query_int(query or {}, "account_id", required=True, lo=0, hi=MAX_ACCOUNT_ID)
    assert value is not None
    return value


def page_size_from_query(query: dict[str, str] | None) -> int:
    value = _query_int(query or {}, "page_size", required=False, lo=1, hi=MAX_ACCOUNT_ID)
    if value is None:
        return DEFAULT_PAGE_SIZE
    if value > MAX_PAGE_SIZE:
        raise errors.InvalidRequest(QUERY_PREFIX + f"page_size: must be at most {MAX_PAGE_SIZE}")
    return value


def encode_token(data: dict[str, Any]) -> str:
    raw = json.dumps(data, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str, required: tuple[str, ...]) -> dict[str, Any]:
    """An opaque Base64URL page token; anything malformed is a clear 400."""
    invalid = errors.InvalidRequest(QUERY_PREFIX + "page_token: invalid page token")
    if len(token) > MAX_TOKEN_CHARS:
        raise invalid
    try:
        data = loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError):
        raise invalid from None
    if not isinstance(data, dict) or any(k not in data for k in required):
        raise invalid
    return data
