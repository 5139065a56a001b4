"""What an llm request says, read from its event: the create's body (validated into
``models.CreateResponse``, its errors in the dialect's words) and a retrieve's query."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from turnstop.core import errors
from turnstop.dialects.llm import models, wire
from turnstop.http.body import parse_body

MAX_CURSOR_DIGITS = 12


def parse_create(event: Mapping[str, Any], max_bytes: int) -> models.CreateResponse:
    body = parse_body(event, models.CreateResponse, max_bytes, messages=wire.BODY_MESSAGES, describe=_validation_error)
    if not body.prompt.strip():
        raise errors.InvalidRequest("'input' must contain some text.", param="input", code="empty_input")
    return body


_FIELD_HINTS = {
    "input": "expected a string or a list of message items ({'role': ..., 'content': <text or input_text parts>})",
    "tools": "tools are not supported by this deployment; send an empty list or omit it",
    "metadata": "expected an object of string keys to string values",
}


def _validation_error(e: ValidationError) -> errors.InvalidRequest:
    first = e.errors()[0]
    loc = [str(p) for p in first.get("loc", ())]
    param = loc[0] if loc else None
    if first.get("type") == "missing" and len(loc) == 1:
        return errors.InvalidRequest(
            f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter"
        )
    hint = _FIELD_HINTS.get(param or "") or first.get("msg", "invalid value")
    if param == "metadata" and "at most" in str(first.get("msg", "")):
        hint = str(first.get("msg")).removeprefix("Value error, ")
    return errors.InvalidRequest(f"Invalid value for '{param}': {hint}.", param=param, code="invalid_value")


def parse_starting_after(query: Mapping[str, str]) -> int:
    """A plain decimal sequence number: no sign, spaces or underscores."""
    raw = query.get("starting_after")
    if raw is None or raw == "":
        return 0
    digits = raw[1:] if raw.startswith("-") else raw
    if not (digits.isascii() and digits.isdigit() and len(digits) <= MAX_CURSOR_DIGITS):
        raise errors.InvalidRequest(
            "Invalid 'starting_after': expected a non-negative integer.", param="starting_after", code="invalid_value"
        )
    if raw.startswith("-"):
        raise errors.InvalidRequest(
            f"Invalid 'starting_after': {raw} is negative; expected a non-negative integer.",
            param="starting_after",
            code="invalid_value",
        )
    return int(raw)


def parse_stream_flag(query: Mapping[str, str]) -> bool:
    raw = (query.get("stream") or "false").lower()
    if raw not in ("true", "false"):
        raise errors.InvalidRequest("Invalid 'stream': expected true or false.", param="stream", code="invalid_value")
    return raw == "true"
