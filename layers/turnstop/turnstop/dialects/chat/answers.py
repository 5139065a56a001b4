"""The chat dialect's answers, each described once (the OpenAPI document's schemas are these
classes): replies, the cancel's and the confirmation's answers, threads, the sign-in's
answers, the stream's events and the seed's error body.

The cancel function's module ``wire`` (its answer, the errors, and the bodies the chat
service builds with it) loads no pydantic: it builds plain dicts, which
tests/unit/test_answers.py checks against these models. The sign-in builds through them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict

from turnstop.http.wire_model import WireModel

__all__ = [
    "ChatAction",
    "ChatCancelled",
    "ChatConfirmed",
    "ChatError",
    "ChatEventData",
    "ChatMessage",
    "ChatReply",
    "ChatStreamEvent",
    "ChatThread",
    "SignedIn",
    "SignedOut",
]


# ----------------------------------------------------------------- answers


class ChatReply(WireModel):
    response: str
    thread_id: str
    requires_confirmation: bool
    confirmation_message: str | None = None


class ChatCancelled(WireModel):
    """The seed's answer, exactly."""

    thread_id: str
    status: Literal["cancelled"]
    response: Literal["Action cancelled."]
    cancelled: Literal[True]


class ChatConfirmed(WireModel):
    thread_id: str
    status: Literal["confirmed"]
    response: str
    confirmed: Literal[True]


class ChatMessage(WireModel):
    role: Literal["user", "assistant"]
    content: str
    created_at: str


class ChatAction(WireModel):
    id: str
    type: str
    summary: str
    status: Literal["pending", "cancelled", "confirmed", "executed"]
    created_at: str
    decided_at: str | None


class ChatThread(WireModel):
    thread_id: str
    messages: list[ChatMessage]
    actions: list[ChatAction]


class SignedIn(WireModel):
    signed_in: Literal[True]
    user: str
    name: str | None
    tenant: str


class SignedOut(WireModel):
    signed_in: Literal[False]


# ----------------------------------------------------------------- the stream's events


class ChatEventData(WireModel):
    model_config = ConfigDict(extra="allow")
    thread_id: str


class ChatStreamEvent(WireModel):
    """The seed's framing: ``{"event_type": <name>, "data": {"thread_id", ...}}``."""

    event_type: Literal["token", "confirmation_required", "done", "cancelled", "error"]
    data: ChatEventData


# ----------------------------------------------------------------- errors


class ChatError(WireModel):
    """The seed's ``{"error": <code>, "message": ...}``."""

    error: str
    message: str
