"""The omni dialect's answers (the SDK's envelopes)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from turnstop_local.openapi.responses.errors import OmniMetadata


class OmniCreated(BaseModel):
    response_id: str
    thread_id: str
    user_message_id: str


class OmniThread(BaseModel):
    id: str
    created_at: str
    title: str | None
    updated_at: str


class OmniContent(BaseModel):
    parts: list[dict[str, Any]]


class OmniMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str
    content: OmniContent
    created_at: str
    outcome: str | None
    role: Literal["USER", "ASSISTANT"]
    seq: int
    thread_id: str


class OmniResponse(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str
    status: Literal["queued", "running", "succeeded", "failed", "canceled"]
    thread_id: str
    user_message_id: str
    content: OmniContent


class OmniCanceled(BaseModel):
    canceled: bool


class OmniPageMetadata(BaseModel):
    model_config = ConfigDict(extra="allow")
    request_id: str
    next_page_token: str | None = None


class OmniCreatedEnvelope(BaseModel):
    data: OmniCreated
    metadata: OmniMetadata


class OmniThreadEnvelope(BaseModel):
    data: OmniThread
    metadata: OmniMetadata


class OmniThreadsEnvelope(BaseModel):
    data: list[OmniThread]
    metadata: OmniPageMetadata


class OmniMessagesEnvelope(BaseModel):
    data: list[OmniMessage]
    metadata: OmniPageMetadata


class OmniResponseEnvelope(BaseModel):
    data: OmniResponse
    metadata: OmniMetadata


class OmniActiveResponseEnvelope(BaseModel):
    """The thread's active response, ``null`` when none is queued or running."""

    data: OmniResponse | None
    metadata: OmniMetadata


class OmniCancelEnvelope(BaseModel):
    """The seed's ``V1OmniAIResponseCancelResponseResponse``."""

    data: OmniCanceled
    metadata: OmniMetadata
