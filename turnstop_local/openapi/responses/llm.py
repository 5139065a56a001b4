"""The llm dialect's answers: the Responses API's response object."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict


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
