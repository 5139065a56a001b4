"""The chat dialect's answers, and its sign-in's."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel


class ChatReply(BaseModel):
    response: str
    thread_id: str
    requires_confirmation: bool
    confirmation_message: str | None = None


class ChatCancelled(BaseModel):
    """The seed's answer, exactly."""

    thread_id: str
    status: Literal["cancelled"]
    response: Literal["Action cancelled."]
    cancelled: Literal[True]


class ChatConfirmed(BaseModel):
    thread_id: str
    status: Literal["confirmed"]
    response: str
    confirmed: Literal[True]


class ChatMessage(BaseModel):
    role: Literal["user", "assistant"]
    content: str
    created_at: str


class ChatAction(BaseModel):
    id: str
    type: str
    summary: str
    status: Literal["pending", "cancelled", "confirmed", "executed"]
    created_at: str
    decided_at: str | None


class ChatThread(BaseModel):
    thread_id: str
    messages: list[ChatMessage]
    actions: list[ChatAction]


class SignedIn(BaseModel):
    signed_in: Literal[True]
    user: str
    name: str | None
    tenant: str


class SignedOut(BaseModel):
    signed_in: Literal[False]
