"""A request's Idempotency-Key: the binding of a request that starts a turn (or changes one, the
tasks cancel), and the key a cancel by key names. A key is at most 255 printable ASCII
characters; the fingerprint reads the body as parsed JSON, so whitespace and key order do not
change a match."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from turnstop.core import errors
from turnstop.http.body import headers_of, loads, raw_body
from turnstop.idempotency.bindings import KeyBinding

MAX_IDEMPOTENCY_KEY = 255


def _checked_key(key: str) -> str:
    if len(key) > MAX_IDEMPOTENCY_KEY or not key.isprintable() or not key.isascii():
        raise errors.InvalidRequest(f"Idempotency-Key must be at most {MAX_IDEMPOTENCY_KEY} printable ASCII characters")
    return key


def start_key(event: Mapping[str, Any]) -> str:
    """A cancel by key's ``Idempotency-Key``: the key of the request that started (or will
    start) the turn to cancel. Required."""
    key = headers_of(event).get("idempotency-key") or None
    if key is None:
        raise errors.InvalidRequest("Idempotency-Key is required: the key the turn was (or will be) started with")
    return _checked_key(key)


def idempotency_binding(event: Mapping[str, Any], tenant: str, end_user: str | None) -> KeyBinding | None:
    """The request's Idempotency-Key bound to what it asks for: route, path, end user and the
    body as parsed JSON (so whitespace and key order do not change a match)."""
    key = headers_of(event).get("idempotency-key") or None
    if key is None:
        return None
    _checked_key(key)
    body = raw_body(event)
    try:
        body = json.dumps(loads(body), sort_keys=True, separators=(",", ":")).encode()
    except (ValueError, RecursionError):
        pass
    method = str(((event.get("requestContext") or {}).get("http") or {}).get("method", ""))
    fingerprint = KeyBinding.fingerprint_of(method, str(event.get("rawPath", "")), end_user or "", body)
    return KeyBinding(tenant, key, fingerprint)
