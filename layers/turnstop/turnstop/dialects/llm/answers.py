"""The llm dialect's answers, each described once (the OpenAPI document's schemas are these
classes): the Responses API's response object, its streaming events and OpenAI's error shape.

Every one of them is built as a plain dict by modules the cancel function loads (the response
object by ``renderer.response_object``, errors by ``wire.error_body``), which load no
pydantic; tests/unit/test_answers.py and the dialect's tests check them against these models.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict

from turnstop.http.wire_model import WireModel

__all__ = ["LlmCancelledBeforeStart", "LlmError", "LlmErrorDetail", "LlmResponse", "LlmStreamEvent"]


# ----------------------------------------------------------------- the response object


class LlmResponse(WireModel):
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


class LlmCancelledBeforeStart(WireModel):
    """A cancel by Idempotency-Key before any response was created: a tombstone."""

    id: None
    object: Literal["response"]
    status: Literal["cancelled"]
    idempotency_key: str
    output: list[Any]


# ----------------------------------------------------------------- streaming events


class LlmStreamEvent(WireModel):
    """One Responses streaming event; ``response.*`` lifecycle events carry the response object."""

    model_config = ConfigDict(extra="allow")
    type: str
    sequence_number: int
    response: LlmResponse | None = None


# ----------------------------------------------------------------- errors


class LlmErrorDetail(WireModel):
    message: str
    type: str
    param: str | None
    code: str | None


class LlmError(WireModel):
    """OpenAI's error shape."""

    error: LlmErrorDetail
