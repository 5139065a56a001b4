"""Wire models of the sessions dialect, and the reading of a resume's cursor."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr

from turnstop.core import errors
from turnstop.dialects.sessions.ids import CURSOR_DIGITS

MAX_PROMPT_CHARS = 200_000


class CreateSession(BaseModel):
    model_config = ConfigDict(extra="ignore")
    persistent: StrictBool = False


class SendMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")
    message: StrictStr = Field(min_length=1, max_length=MAX_PROMPT_CHARS)
    max_duration_seconds: StrictFloat | StrictInt | None = None  # or the Turnstop-Max-Duration header


class CreateResponse(BaseModel):
    """Stateless ``POST /v1/responses``: ``input`` is the prompt (``message`` is accepted too)."""

    model_config = ConfigDict(extra="ignore")
    input: StrictStr | None = Field(default=None, min_length=1, max_length=MAX_PROMPT_CHARS)
    message: StrictStr | None = Field(default=None, min_length=1, max_length=MAX_PROMPT_CHARS)
    max_duration_seconds: StrictFloat | StrictInt | None = None

    @property
    def prompt(self) -> str:
        return self.input or self.message or ""


def parse_after(headers: Mapping[str, str], query: Mapping[str, str]) -> int:
    raw = headers.get("last-event-id") or query.get("after") or "0"
    if not (raw.isascii() and raw.isdigit() and len(raw) <= CURSOR_DIGITS):
        raise errors.InvalidRequest("Last-Event-ID / after must be a non-negative integer")
    return int(raw)
