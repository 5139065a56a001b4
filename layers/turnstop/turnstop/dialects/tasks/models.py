"""Requests of the tasks dialect: bodies, path ids, list queries and the strict X-Request-Id.

Unknown fields are refused everywhere (a misspelt ``callback`` must not silently lose a
webhook, a misspelt ``reason`` a cancel's reason); every failure is a 400 (413 for size)
before anything is read or written.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StrictStr, ValidationError, field_validator

from turnstop.core import errors
from turnstop.dialects.tasks.renderer import ID_PREFIX, WIRE_STATUS
from turnstop.dialects.tasks.wire import BODY_MESSAGES
from turnstop.http.body import headers_of, json_object
from turnstop.runtime.model import MAX_WORDS

MAX_PROMPT_CHARS = 100_000
MAX_METADATA_KEYS = 16
MAX_METADATA_KEY_CHARS = 64
MAX_METADATA_VALUE_CHARS = 512
DEFAULT_LIMIT = 20
MAX_LIMIT = 100
MAX_CURSOR_CHARS = 200
_CURSOR = re.compile(r"\d{15}#" + re.escape(ID_PREFIX) + r"[A-Za-z0-9]{1,64}")
_HOST = re.compile(r"[A-Za-z0-9.\-]+(:\d{1,5})?|\[[0-9A-Fa-f:.]+\](:\d{1,5})?")


class TaskInput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    prompt: StrictStr = Field(min_length=1, max_length=MAX_PROMPT_CHARS)
    max_output_tokens: StrictInt | None = Field(default=None, ge=1, le=MAX_WORDS)

    @field_validator("prompt")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be blank")
        return v


class CallbackSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: StrictStr = Field(min_length=1, max_length=2048)


class CreateTask(BaseModel):
    """``POST /v1/tasks``."""

    model_config = ConfigDict(extra="forbid")
    capability: StrictStr = Field(max_length=128)
    model: StrictStr = Field(max_length=128)
    input: TaskInput
    metadata: dict[StrictStr, StrictStr] = Field(default_factory=dict)
    callback: CallbackSpec | None = None
    max_duration_seconds: StrictFloat | StrictInt | None = None  # or the Turnstop-Max-Duration header

    @field_validator("metadata")
    @classmethod
    def _metadata_limits(cls, v: dict[str, str]) -> dict[str, str]:
        if len(v) > MAX_METADATA_KEYS:
            raise ValueError(f"at most {MAX_METADATA_KEYS} keys")
        for key, value in v.items():
            if not 1 <= len(key) <= MAX_METADATA_KEY_CHARS:
                raise ValueError(f"keys are 1 to {MAX_METADATA_KEY_CHARS} characters")
            if len(value) > MAX_METADATA_VALUE_CHARS:
                raise ValueError(f"values are at most {MAX_METADATA_VALUE_CHARS} characters")
        return v


def _describe(e: ValidationError) -> errors.InvalidRequest:
    first = e.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ())) or "body"
    kind = first.get("type")
    if kind == "missing":
        return errors.InvalidRequest(f"Missing required field '{where}'")
    if kind == "extra_forbidden":
        return errors.InvalidRequest(f"Unknown field '{where}'")
    message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    return errors.InvalidRequest(f"Invalid field '{where}': {message}")


def _parse(event: Mapping[str, Any], model: type[BaseModel], max_bytes: int, *, optional: bool) -> Any:
    obj = json_object(event, max_bytes, BODY_MESSAGES, optional=optional)
    try:
        return model.model_validate(obj or {})
    except ValidationError as e:
        raise _describe(e) from None


def parse_create(event: Mapping[str, Any], max_bytes: int) -> CreateTask:
    return _parse(event, CreateTask, max_bytes, optional=False)


# ------------------------------------------------------------------------------ list queries


def parse_list_query(query: Mapping[str, str]) -> tuple[str | None, int, str | None]:
    """(status, limit, after) from ``?status=&limit=&cursor=``."""
    status = query.get("status") or None
    wire_statuses = sorted(set(WIRE_STATUS.values()))
    if status is not None and status not in wire_statuses:
        raise errors.InvalidRequest(f"Invalid 'status': expected one of {', '.join(wire_statuses)}")
    raw = query.get("limit")
    limit = DEFAULT_LIMIT
    if raw is not None:
        if not (raw.isascii() and raw.isdigit() and len(raw) <= 4) or not 1 <= int(raw) <= MAX_LIMIT:
            raise errors.InvalidRequest(f"Invalid 'limit': expected an integer from 1 to {MAX_LIMIT}")
        limit = int(raw)
    cursor = query.get("cursor") or None
    return status, limit, None if cursor is None else decode_cursor(cursor)


def encode_cursor(after: str) -> str:
    return base64.urlsafe_b64encode(after.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    invalid = errors.InvalidRequest("Invalid 'cursor': pass back the next_cursor of a previous page")
    if len(cursor) > MAX_CURSOR_CHARS:
        raise invalid
    try:
        after = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, ValueError):
        raise invalid from None
    if not _CURSOR.fullmatch(after):
        raise invalid
    return after


def links_base(event: Mapping[str, Any], configured: str | None) -> str:
    """Where a task's links point: the configured public base URL, else the request's own."""
    if configured:
        return configured.rstrip("/")
    headers = headers_of(event)
    host = headers.get("host") or str((event.get("requestContext") or {}).get("domainName") or "")
    if not _HOST.fullmatch(host):
        host = "localhost"
    proto = headers.get("x-forwarded-proto", "https").split(",")[0].strip().lower()
    return f"{'http' if proto == 'http' else 'https'}://{host}"
