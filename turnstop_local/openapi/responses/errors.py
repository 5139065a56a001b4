"""Every dialect's error body, and AWS's own answer before any function runs."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class GatewayError(BaseModel):
    """AWS's own answer, before any function runs: API Gateway's (unknown route, body over
    10 MB, a throttled invocation, an integration that failed or timed out) or a streaming
    Function URL's throttle (``{"Reason", "Type", "message"}``)."""

    model_config = ConfigDict(extra="allow")
    message: str


class SessionsErrorDetail(BaseModel):
    type: str = Field(description="the error code: invalid_request, unauthorized, not_found, ...")
    message: str
    request_id: str


class SessionsError(BaseModel):
    """The sessions dialect's (and the admin endpoints') error shape."""

    error: SessionsErrorDetail


class OmniErrorDetail(BaseModel):
    code: int = Field(description="the HTTP status")
    message: str


class OmniMetadata(BaseModel):
    request_id: str


class OmniError(BaseModel):
    """The seed's error envelope, exactly."""

    error: OmniErrorDetail
    metadata: OmniMetadata


class LlmErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None
    code: str | None


class LlmError(BaseModel):
    """OpenAI's error shape."""

    error: LlmErrorDetail


class TasksErrorDetail(BaseModel):
    code: str
    message: str
    retryable: bool


class TasksError(BaseModel):
    object: Literal["error"]
    error: TasksErrorDetail
    request_id: str


class ChatError(BaseModel):
    """The seed's ``{"error": <code>, "message": ...}``."""

    error: str
    message: str
