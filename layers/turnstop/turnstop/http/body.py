"""Request bodies and ids: one parser for every dialect (a request's Idempotency-Key is read by
``idempotency/requests.py``).

Every way a body can fail to parse (too large, empty, not UTF-8, not JSON, nested too deep,
an integer too long to convert, not an object, wrong fields) is a domain error with the
dialect's own wording: never a 500, and nothing is written before it is parsed.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from turnstop.core import errors

if TYPE_CHECKING:  # pydantic is imported by the routes that parse a model, not at cold start
    from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound="BaseModel")


@dataclass(frozen=True)
class BodyMessages:
    """A dialect's wording for body errors. ``{max}`` and ``{error}`` are filled in; ``code``
    goes into the error's details (the llm dialect's ``invalid_json``)."""

    too_large: str = "Request body exceeds {max} bytes"
    empty: str = "Request body is required"
    malformed: str = "Malformed JSON body: {error}"
    not_object: str = "Request body must be a JSON object"
    code: str | None = None

    def invalid(self, template: str, **fill: Any) -> errors.InvalidRequest:
        details = {"code": self.code} if self.code else {}
        return errors.InvalidRequest(template.format(**fill), **details)


DEFAULT_MESSAGES = BodyMessages()


def raw_body(event: Mapping[str, Any]) -> bytes:
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise errors.InvalidRequest("Request body is not valid base64") from None
    return body.encode() if isinstance(body, str) else bytes(body)


def _constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _finite(text: str) -> float:
    value = float(text)
    if value in (math.inf, -math.inf):
        raise ValueError(f"the number {text[:20]} is out of range")
    return value


def _may_hold_surrogates(data: bytes | str) -> bool:
    if isinstance(data, bytes):
        return b"\\ud" in data.lower()
    return "\\ud" in data.lower()


def loads(data: bytes | str) -> Any:
    """Strict ``json.loads`` (no NaN or Infinity, finite numbers, valid Unicode) whose every
    failure is a ValueError with a readable message."""
    try:
        obj = json.loads(data, parse_constant=_constant, parse_float=_finite)
        if _may_hold_surrogates(data):
            json.dumps(obj, ensure_ascii=False).encode()  # a lone surrogate cannot be stored
        return obj
    except UnicodeEncodeError:
        raise ValueError("a string holds a lone surrogate (not valid Unicode)") from None
    except json.JSONDecodeError as e:
        raise ValueError(str(e)) from None
    except UnicodeDecodeError:
        raise ValueError("the body is not UTF-8") from None
    except RecursionError:
        raise ValueError("nested too deeply") from None
    except ValueError as e:  # e.g. an integer longer than Python converts (4300 digits)
        raise ValueError(str(e).split(";")[0]) from None


def json_object(
    event: Mapping[str, Any], max_bytes: int, messages: BodyMessages = DEFAULT_MESSAGES, *, optional: bool = False
) -> dict[str, Any] | None:
    """The body as a JSON object; None for an empty optional body."""
    data = raw_body(event)
    if len(data) > max_bytes:
        raise errors.PayloadTooLarge(messages.too_large.format(max=max_bytes))
    if not data.strip():
        if optional:
            return None
        raise messages.invalid(messages.empty)
    try:
        obj = loads(data)
    except ValueError as e:
        raise messages.invalid(messages.malformed, error=e) from None
    if not isinstance(obj, dict):
        raise messages.invalid(messages.not_object)
    return obj


def describe_validation_error(e: ValidationError) -> str:
    first = e.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ())) or "body"
    return f"Invalid field '{where}': {first.get('msg', 'invalid value')}"


def parse_body(
    event: Mapping[str, Any],
    model: type[M],
    max_bytes: int,
    *,
    optional: bool = False,
    messages: BodyMessages = DEFAULT_MESSAGES,
    describe: Callable[[ValidationError], Exception] | None = None,
) -> M:
    """Validate a JSON body into ``model``; every failure is a domain error."""
    from pydantic import ValidationError

    obj = json_object(event, max_bytes, messages, optional=optional)
    try:
        return model.model_validate(obj or {})
    except ValidationError as e:
        raise (describe(e) if describe else errors.InvalidRequest(describe_validation_error(e))) from None


MAX_REASON_CHARS = 1000


def cancel_reason(body: Mapping[str, Any] | None, *, others: bool) -> str | None:
    """A cancel's optional ``{"reason": "..."}``, checked without a model (a cancel function
    loads no pydantic): a string of at most 1,000 characters. ``others``: whether other
    fields are ignored (else each is an unknown field, 400)."""
    body = body or {}
    if not others and (unknown := sorted(set(body) - {"reason"})):
        raise errors.InvalidRequest(f"Unknown field '{unknown[0]}'")
    reason = body.get("reason")
    if reason is None:
        return None
    if not isinstance(reason, str):
        raise errors.InvalidRequest("Invalid field 'reason': Input should be a valid string")
    if len(reason) > MAX_REASON_CHARS:
        raise errors.InvalidRequest(f"Invalid field 'reason': String should have at most {MAX_REASON_CHARS} characters")
    return reason


def headers_of(event: Mapping[str, Any]) -> dict[str, str]:
    return {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}


MAX_DURATION_HEADER = "turnstop-max-duration"
MAX_DURATION_SECONDS = 900  # Lambda's own limit: no turn can run longer anyway
_SECONDS = re.compile(r"\d{1,6}(\.\d{1,6})?")


def _duration(value: float, where: str) -> float:
    if not 0 < value <= MAX_DURATION_SECONDS:
        raise errors.InvalidRequest(
            f"{where} must be a number of seconds greater than 0 and at most {MAX_DURATION_SECONDS}", param=where
        )
    return value


def max_duration_ms(event: Mapping[str, Any], in_body: float | None = None) -> int | None:
    """A turn's own deadline, in ms from its start: the ``Turnstop-Max-Duration: <seconds>``
    header of the request that starts it, or ``max_duration_seconds`` in its body (both: they
    must agree). Past it the runtime cancels the turn (source ``deadline``)."""
    raw = headers_of(event).get(MAX_DURATION_HEADER)
    header = None
    if raw is not None:
        if not _SECONDS.fullmatch(raw.strip()):
            raise errors.InvalidRequest(
                f"Turnstop-Max-Duration must be a number of seconds greater than 0 and at most {MAX_DURATION_SECONDS}",
                param="Turnstop-Max-Duration",
            )
        header = _duration(float(raw.strip()), "Turnstop-Max-Duration")
    body = None if in_body is None else _duration(float(in_body), "max_duration_seconds")
    if header is not None and body is not None and header != body:
        raise errors.InvalidRequest(
            "Turnstop-Max-Duration and max_duration_seconds disagree; send one", param="max_duration_seconds"
        )
    seconds = header if header is not None else body
    return None if seconds is None else max(1, round(seconds * 1000))
