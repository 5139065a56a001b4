"""What the handlers answer, as pydantic models: the response side of the documents.

The handlers build their answers as dicts (``dialects/*/wire.py``, ``renderer.py``); these
models describe those dicts. They name every field a client can rely on and leave the objects
open (an answer may carry more), so the schemathesis run (tests/e2e/test_openapi_fuzz_e2e.py)
checks every answer against them and fails when a handler and its document part ways.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel

from turnstop.dialects.chat.threads import MAX_THREAD_ID_CHARS
from turnstop.http.body import MAX_REASON_CHARS

# ----------------------------------------------------------------- errors, per dialect


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


# ----------------------------------------------------------------- sessions


class Session(BaseModel):
    id: str
    object: Literal["session"]
    persistent: bool
    created_at: str
    expires_at: str


class DeletedSession(BaseModel):
    id: str
    object: Literal["session"]
    deleted: Literal[True]
    cancelled_response_id: str | None


class SessionsCancel(BaseModel):
    """The seed's ``{"response_id": "msg_...", "status": "cancelling" | "already_complete"}``;
    a cancel by key that finds no turn yet answers ``response_id: null`` (a tombstone)."""

    response_id: str | None
    status: Literal["cancelling", "already_complete"]


class LedgerEntry(BaseModel):
    model_config = ConfigDict(extra="allow")
    turn_id: str
    kind: str = Field(description="usage, debit, charge or refund")
    at: int = Field(description="epoch milliseconds")


class Ledger(BaseModel):
    object: Literal["list"]
    data: list[LedgerEntry]


# ----------------------------------------------------------------- admin


class BulkScope(BaseModel):
    """Which turns a bulk cancel stops: a tenant (the caller's own), narrowed by any of an
    account, a session or a thread (not both), an end user."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"minProperties": 1, "not": {"required": ["session_id", "thread_id"]}},
    )
    tenant: str | None = Field(default=None, min_length=1, max_length=128, description="default: the caller's")
    account_id: int | None = Field(default=None, ge=0)
    session_id: str | None = Field(default=None, min_length=1, max_length=256)
    thread_id: str | None = Field(default=None, min_length=1, max_length=256)
    end_user: str | None = Field(default=None, min_length=1, max_length=256)


class BulkCancelRequest(BaseModel):
    """``POST /v1/admin/cancels`` (``turnstop.core.bulk.parse_request`` reads it)."""

    model_config = ConfigDict(extra="forbid")
    scope: BulkScope
    created_before: str | None = Field(
        default=None, description="RFC 3339, e.g. 2026-11-23T02:04:29Z", json_schema_extra={"format": "date-time"}
    )
    reason: str | None = Field(default=None, min_length=1, max_length=1000)
    actor: str | None = Field(default=None, min_length=1, max_length=256)


class BulkCancelReport(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str
    object: Literal["bulk_cancel"]
    status: str = Field(description="running or completed")
    scope: dict[str, Any]
    source: str
    matched: int
    cancelled: int
    already_finished: int
    failed: int
    pages: int
    created_at: str
    completed_at: str | None


# ----------------------------------------------------------------- omni


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


# ----------------------------------------------------------------- llm


class LlmResponse(BaseModel):
    """The Responses API's response object (every field of the seed's example)."""

    model_config = ConfigDict(extra="allow")
    id: str
    object: Literal["response"]
    created_at: int
    status: Literal["completed", "failed", "in_progress", "cancelled", "queued", "incomplete"]
    background: bool
    error: dict[str, Any] | None
    incomplete_details: dict[str, Any] | None
    instructions: str | None
    max_output_tokens: int | None
    max_tool_calls: int | None
    metadata: dict[str, str]
    model: str
    output: list[dict[str, Any]]
    output_text: str
    parallel_tool_calls: bool
    previous_response_id: str | None
    reasoning: dict[str, Any]
    service_tier: str | None
    store: bool
    text: dict[str, Any]
    tool_choice: str
    tools: list[Any]
    truncation: str
    usage: dict[str, Any] | None
    user: str | None


class LlmCancelledBeforeStart(BaseModel):
    """A cancel by Idempotency-Key before any response was created: a tombstone."""

    id: None
    object: Literal["response"]
    status: Literal["cancelled"]
    idempotency_key: str
    output: list[Any]


# ----------------------------------------------------------------- tasks


class TaskObject(BaseModel):
    """The seed's task object: every field, always."""

    model_config = ConfigDict(extra="allow")
    object: Literal["task"]
    task_id: str
    status: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    capability: str
    model: str
    resolved_model: str | None
    metadata: dict[str, str]
    input: dict[str, Any]
    progress: dict[str, Any]
    output: dict[str, Any]
    warnings: list[dict[str, Any]]
    error: dict[str, Any] | None
    usage: dict[str, Any]
    billing: dict[str, Any]
    callback: dict[str, Any] | None
    created_at: str
    started_at: str | None
    completed_at: str | None
    cancel_requested_at: str | None
    links: dict[str, str]


class TaskList(BaseModel):
    model_config = ConfigDict(extra="allow")
    object: Literal["list"]
    data: list[TaskObject]


class TaskCancelledBeforeStart(BaseModel):
    """A cancel by Idempotency-Key before any task was created: a tombstone."""

    model_config = ConfigDict(extra="allow")
    object: Literal["task"]
    task_id: None
    status: Literal["cancelled"]
    idempotency_key: str
    cancel_requested_at: str
    warnings: list[Any]


# ----------------------------------------------------------------- chat


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
