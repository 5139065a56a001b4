"""The omni dialect's answers, each described once (the OpenAPI document's schemas are these
classes): the SDK's envelopes and what they carry, and the seed's error body.

The cancel function builds its answer and errors as dicts (``wire.envelope``,
``wire.error_body``), loading no pydantic; tests/unit/test_answers.py checks them against the
models here.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from pydantic import ConfigDict, Field

from turnstop.core.clock import iso
from turnstop.core.events import Event
from turnstop.core.turn import Status, Turn
from turnstop.dialects.omni.renderer import TEXT_DELTA, THOUGHT, WIRE_STATUS, text_parts, wire_error
from turnstop.http.wire_model import WireModel
from turnstop.store.omni_threads import OmniMessage as StoredMessage
from turnstop.store.omni_threads import OmniThread as StoredThread

__all__ = [
    "OmniActiveResponseEnvelope",
    "OmniCancelEnvelope",
    "OmniCanceled",
    "OmniContent",
    "OmniCreated",
    "OmniCreatedEnvelope",
    "OmniError",
    "OmniErrorDetail",
    "OmniMessage",
    "OmniMessagesEnvelope",
    "OmniMetadata",
    "OmniPageMetadata",
    "OmniResponse",
    "OmniResponseEnvelope",
    "OmniThread",
    "OmniThreadEnvelope",
    "OmniThreadsEnvelope",
    "created",
    "message_body",
    "response_body",
    "thread_body",
]

# ----------------------------------------------------------------- errors


class OmniErrorDetail(WireModel):
    code: int = Field(description="the HTTP status")
    message: str


class OmniMetadata(WireModel):
    request_id: str


class OmniError(WireModel):
    """The seed's error envelope, exactly."""

    error: OmniErrorDetail
    metadata: OmniMetadata


# ----------------------------------------------------------------- bodies


class OmniCreated(WireModel):
    response_id: str
    thread_id: str
    user_message_id: str


class OmniThread(WireModel):
    id: str
    created_at: str
    title: str | None
    updated_at: str


class OmniContent(WireModel):
    parts: list[dict[str, Any]]


class OmniMessage(WireModel):
    model_config = ConfigDict(extra="allow")
    id: str
    content: OmniContent
    created_at: str
    outcome: str | None
    role: Literal["USER", "ASSISTANT"]
    seq: int
    thread_id: str


class OmniResponse(WireModel):
    model_config = ConfigDict(extra="allow")
    id: str
    status: Literal["queued", "running", "succeeded", "failed", "canceled"]
    thread_id: str
    user_message_id: str
    content: OmniContent


class OmniCanceled(WireModel):
    canceled: bool


class OmniPageMetadata(WireModel):
    model_config = ConfigDict(extra="allow")
    request_id: str
    next_page_token: str | None = None


class OmniCreatedEnvelope(WireModel):
    data: OmniCreated
    metadata: OmniMetadata


class OmniThreadEnvelope(WireModel):
    data: OmniThread
    metadata: OmniMetadata


class OmniThreadsEnvelope(WireModel):
    data: list[OmniThread]
    metadata: OmniPageMetadata


class OmniMessagesEnvelope(WireModel):
    data: list[OmniMessage]
    metadata: OmniPageMetadata


class OmniResponseEnvelope(WireModel):
    data: OmniResponse
    metadata: OmniMetadata


class OmniActiveResponseEnvelope(WireModel):
    """The thread's active response, ``null`` when none is queued or running."""

    data: OmniResponse | None
    metadata: OmniMetadata


class OmniCancelEnvelope(WireModel):
    """The seed's ``V1OmniAIResponseCancelResponseResponse``."""

    data: OmniCanceled
    metadata: OmniMetadata


# ----------------------------------------------------------------- built through the models


def created(turn: Turn) -> dict[str, Any]:
    """A new thread's or message's answer: the response that will run."""
    return OmniCreated(
        response_id=turn.id,
        thread_id=turn.input["thread_id"],
        user_message_id=turn.input["user_message_id"],
    ).wire()


def thread_body(t: StoredThread) -> dict[str, Any]:
    return OmniThread(id=t.id, created_at=iso(t.created_at), title=t.title, updated_at=iso(t.updated_at)).wire()


def message_body(m: StoredMessage) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": m.id,
        "content": {"parts": [p for p in m.parts if p.get("type") != "thinking"]},
        "created_at": iso(m.created_at),
        "outcome": m.outcome,
        "role": m.role,
        "seq": m.seq,
        "thread_id": m.thread_id,
    }
    if m.context is not None:
        body["context"] = m.context
    if m.error is not None:
        body["error"] = m.error
    return OmniMessage.model_validate(body).wire()


def response_body(turn: Turn, events: Iterable[Event]) -> dict[str, Any]:
    """The pollable response: parts from the committed events only (partial while running; a
    turn whose cancel was accepted ends with exactly these, see ``OmniRenderer``)."""
    thoughts: list[str] = []
    text: list[str] = []
    for ev in events:
        if ev.type == THOUGHT:
            thoughts.append(str(ev.data.get("thought", "")))
        elif ev.type == TEXT_DELTA:
            text.append(str(ev.data.get("delta", "")))
    parts: list[dict[str, Any]] = []
    if thoughts:
        parts.append({"type": "thinking", "thoughts": ["".join(thoughts)]})
    parts.extend(text_parts("".join(text)))
    status = turn.read_status  # ``canceled`` from an accepted cancel on, as its DELETE answered
    body: dict[str, Any] = {
        "id": turn.id,
        "status": WIRE_STATUS[status],
        "thread_id": turn.input["thread_id"],
        "user_message_id": turn.input["user_message_id"],
        "content": {"parts": parts},
    }
    if status.terminal:
        body["output_message_id"] = turn.input["assistant_message_id"]
    if status in (Status.FAILED, Status.INCOMPLETE):
        body["error"] = wire_error(turn.error) or {"code": "error", "message": "The response failed"}
    return OmniResponse.model_validate(body).wire()
