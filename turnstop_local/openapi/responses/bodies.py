"""Request bodies the lean cancel handlers read by hand, and the data of server-sent events."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel

from turnstop.dialects.chat.threads import MAX_THREAD_ID_CHARS
from turnstop.http.body import MAX_REASON_CHARS
from turnstop_local.openapi.responses.llm import LlmResponse

# ----------------------------------------------------------------- bodies the lean cancel handlers read by hand
# The cancel functions load no pydantic (their cold start); these models say what
# ``turnstop.http.body.cancel_reason`` and ``turnstop.dialects.chat.threads.thread_id_of`` accept.


class CancelReason(BaseModel):
    """A cancel's optional ``{"reason": "..."}`` (other fields are ignored)."""

    reason: str | None = Field(default=None, max_length=MAX_REASON_CHARS)


class StrictCancelReason(BaseModel):
    """A task cancel's optional ``{"reason": "..."}``: any other field is a 400."""

    model_config = ConfigDict(extra="forbid")
    reason: str | None = Field(default=None, max_length=MAX_REASON_CHARS)


class ChatThreadRef(BaseModel):
    """The seed's ``{"thread_id": "thread_xyz789"}`` (other fields are ignored)."""

    thread_id: str = Field(min_length=1, max_length=MAX_THREAD_ID_CHARS)


# ----------------------------------------------------------------- the data of server-sent events


class Usage(BaseModel):
    input_tokens: int
    output_tokens: int
    total_tokens: int


class TurnCreatedEvent(BaseModel):
    """``message.created`` / ``response.created``: ``id`` is the response id."""

    id: str
    object: Literal["message", "response"]
    status: Literal["queued"]
    created_at: str
    session_id: str | None = None


class TurnDeltaEvent(BaseModel):
    id: str
    delta: str


class TurnEndEvent(BaseModel):
    """The last event: ``…completed`` (billed), ``…cancelled`` (the usage at stop, not billed;
    who stopped it and why) or ``…failed``."""

    model_config = ConfigDict(extra="allow")
    id: str
    status: Literal["completed", "cancelled", "failed"]
    usage: Usage
    billed: bool
    cancel: dict[str, Any] | None = None
    error: Any = None


class LlmStreamEvent(BaseModel):
    """One Responses streaming event; ``response.*`` lifecycle events carry the response object."""

    model_config = ConfigDict(extra="allow")
    type: str
    sequence_number: int
    response: LlmResponse | None = None


class ChatEventData(BaseModel):
    model_config = ConfigDict(extra="allow")
    thread_id: str


class ChatStreamEvent(BaseModel):
    """The seed's framing: ``{"event_type": <name>, "data": {"thread_id", ...}}``."""

    event_type: Literal["token", "confirmation_required", "done", "cancelled", "error"]
    data: ChatEventData


class AnyJson(RootModel[Any]):
    """Any JSON, ignored: sign-out is state-changing, so it is sent as ``application/json``
    (the CSRF rule); ``{}`` will do."""
