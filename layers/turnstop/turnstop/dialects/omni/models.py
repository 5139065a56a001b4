"""Wire models of the omni dialect: request bodies (as the ``clearstreet`` SDK sends them) and
the parsing of query strings, with errors worded like the seed's (serde/axum style)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
    model_validator,
)

from turnstop.core import errors
from turnstop.dialects.omni.query import MAX_ACCOUNT_ID
from turnstop.dialects.omni.wire import BODY_PREFIX
from turnstop.http.body import BodyMessages, json_object

MAX_TEXT_CHARS = 100_000
MAX_CONTEXT_BYTES = 64 * 1024  # compact JSON, as the SDK documents
MAX_CONTEXT_ITEMS = 4
MAX_DATA_DEPTH = 32

Capability = Literal["PREFILL_ORDER", "OPEN_CHART", "OPEN_SCREENER", "OPEN_ENTITLEMENT_CONSENT"]


def _nonblank(v: str, name: str) -> str:
    if not v.strip():
        raise ValueError(f"{name} must not be blank")
    return v


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


class ContextItem(BaseModel):
    model_config = ConfigDict(extra="ignore")
    data: dict[str, Any]
    kind: StrictStr
    label: StrictStr
    captured_at: StrictStr | None = None

    @field_validator("kind", "label")
    @classmethod
    def _blank(cls, v: str, info: Any) -> str:
        return _nonblank(v, info.field_name)

    @field_validator("data")
    @classmethod
    def _nesting(cls, v: dict[str, Any]) -> dict[str, Any]:
        if _depth(v) > MAX_DATA_DEPTH:
            raise ValueError(f"data may contain at most {MAX_DATA_DEPTH} levels of nesting")
        return v

    @field_validator("captured_at")
    @classmethod
    def _iso(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                datetime.fromisoformat(v.replace("Z", "+00:00"))
            except ValueError:
                raise ValueError("captured_at must be an ISO 8601 date-time") from None
        return v


class TurnContext(BaseModel):
    model_config = ConfigDict(extra="ignore")
    items: list[ContextItem] = Field(min_length=1, max_length=MAX_CONTEXT_ITEMS)


class Target(BaseModel):
    model_config = ConfigDict(extra="ignore")
    ticker: StrictStr = Field(max_length=32)
    type: Literal["ticker"]

    @field_validator("ticker")
    @classmethod
    def _blank(cls, v: str) -> str:
        return _nonblank(v, "ticker")


class _Turn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    account_id: StrictInt = Field(ge=0, le=MAX_ACCOUNT_ID)
    capabilities: list[Capability] = Field(default_factory=list, max_length=4)
    context: TurnContext | None = None


class CreateThread(_Turn):
    type: Literal["instant", "deep_insights"]
    text: StrictStr | None = Field(default=None, max_length=MAX_TEXT_CHARS)
    target: Target | None = None
    thesis: StrictStr | None = Field(default=None, max_length=MAX_TEXT_CHARS)

    @model_validator(mode="after")
    def _mode(self) -> CreateThread:
        if self.type == "instant":
            if self.text is None:
                raise ValueError("missing field `text` (required for type `instant`)")
            _nonblank(self.text, "text")
        elif self.target is None:
            raise ValueError("missing field `target` (required for type `deep_insights`)")
        return self

    @property
    def prompt(self) -> str:
        if self.type == "instant":
            return self.text or ""
        assert self.target is not None
        thesis = f" Thesis: {self.thesis}" if self.thesis else ""
        return f"Deep insights on {self.target.ticker}.{thesis}"

    @property
    def visible_text(self) -> str:
        return self.prompt


class CreateMessage(_Turn):
    text: StrictStr = Field(max_length=MAX_TEXT_CHARS)

    @field_validator("text")
    @classmethod
    def _blank(cls, v: str) -> str:
        return _nonblank(v, "text")


def _describe(e: ValidationError) -> str:
    first = e.errors()[0]
    loc = ".".join(str(p) for p in first.get("loc", ()))
    if first.get("type") == "missing":
        return f"missing field `{loc}`"
    msg = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    return f"{loc}: {msg}" if loc else msg


BODY_MESSAGES = BodyMessages(
    too_large="Request body exceeds {max} bytes",
    empty=BODY_PREFIX + "EOF while parsing a value",
    malformed=BODY_PREFIX + "invalid JSON: {error}",
    not_object=BODY_PREFIX + "expected a JSON object",
)


def parse_turn_body(event: Mapping[str, Any], model: type[_Turn], max_bytes: int) -> Any:
    """The JSON body of a create call, or InvalidRequest / PayloadTooLarge; nothing is written."""
    obj = json_object(event, max_bytes, BODY_MESSAGES)
    assert obj is not None
    if obj.get("account_id", 0) is None:
        raise errors.InvalidRequest(BODY_PREFIX + "account_id: an account_id is required (null given)")
    try:
        body = model.model_validate(obj)
    except ValidationError as e:
        raise errors.InvalidRequest(BODY_PREFIX + _describe(e)) from None
    if obj.get("context") is not None:
        size = len(json.dumps(obj["context"], separators=(",", ":"), ensure_ascii=False).encode())
        if size > MAX_CONTEXT_BYTES:
            raise errors.InvalidRequest(
                BODY_PREFIX + f"context: compact JSON is {size} bytes; the limit is {MAX_CONTEXT_BYTES} (64 KiB)"
            )
    return body
