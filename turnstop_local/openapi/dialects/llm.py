"""The LLM OpenAPI table: every operation, its answers and the seed's examples."""

from __future__ import annotations

from typing import Any

import turnstop_local.openapi.spec  # noqa: F401  (puts the layer on sys.path first)
from turnstop.dialects.llm import models as llm_models
from turnstop.dialects.llm.answers import LlmCancelledBeforeStart, LlmError, LlmResponse, LlmStreamEvent
from turnstop_local.openapi.spec import (
    IDEMPOTENCY_KEY,
    KEYED,
    LLM_EVENT_NAMES,
    MAX_DURATION,
    START_KEY,
    Dialect,
    Ok,
    Op,
    Param,
)

LLM_EVENTS = (
    "The Responses API's streaming events, each `{type, sequence_number, ...}` with an `id:`: "
    "`response.created`, `response.in_progress`, `response.output_item.added`, "
    "`response.content_part.added`, `response.output_text.delta`…, `response.output_text.done`, "
    "`response.content_part.done`, `response.output_item.done`, then one of `response.completed`, "
    "`response.cancelled`, `response.failed`, `response.incomplete`."
)
# The seed's example (seed 004), verbatim.
LLM_CANCELLED: dict[str, Any] = {
    "id": "resp_cancel123",
    "object": "response",
    "created_at": 1735689600,
    "status": "cancelled",
    "error": None,
    "incomplete_details": None,
    "background": False,
    "instructions": None,
    "max_output_tokens": None,
    "max_tool_calls": 30,
    "metadata": {},
    "model": "meetkai:functionary-urdu-mini-pak",
    "output": [],
    "output_text": "",
    "parallel_tool_calls": True,
    "previous_response_id": None,
    "reasoning": {"effort": None, "summary": None},
    "service_tier": "auto",
    "store": True,
    "text": {"format": {"type": "text"}, "verbosity": "medium"},
    "tool_choice": "auto",
    "tools": [],
    "truncation": "auto",
    "usage": {
        "input_tokens": 0,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": 0,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 0,
    },
    "user": None,
}
LLM_ID = Param(
    "response_id",
    "path",
    {"type": "string", "minLength": 1, "maxLength": 256},
    "The unique identifier of the response, formatted as 'resp_' or 'resp-' followed by alphanumeric characters.",
    required=True,
)
LLM = Dialect(
    "llm",
    "turnstop llm API",
    "OpenAI-compatible Responses (seed 004), as the `openai` and `meetkai-mka1` SDKs call them. "
    'Errors: `{"error": {"message", "type", "param", "code"}}`.',
    LlmError,
    (
        Op(
            "POST",
            "/api/v1/llm/responses",
            "createResponse",
            "Create a response: JSON (`background` returns at once) or SSE with `stream: true`",
            {
                200: Ok(
                    "The response object, or its events with `stream: true`",
                    LlmResponse,
                    sse=LLM_EVENTS,
                    events=((LLM_EVENT_NAMES, LlmStreamEvent),),
                )
            },
            (401, 409, 410, 422),
            llm_models.CreateResponse,
            True,
            (*KEYED, IDEMPOTENCY_KEY, MAX_DURATION),
        ),
        Op(
            "GET",
            "/api/v1/llm/responses/{response_id}",
            "getResponse",
            "The response object; `?stream=true&starting_after=n` replays its events after n and follows",
            {
                200: Ok(
                    "The response object, or its events with `stream=true`",
                    LlmResponse,
                    sse=LLM_EVENTS,
                    events=((LLM_EVENT_NAMES, LlmStreamEvent),),
                )
            },
            (401,),
            params=(
                LLM_ID,
                *KEYED,
                Param(
                    "stream",
                    "query",
                    {"type": "string", "pattern": "^([Tt][Rr][Uu][Ee]|[Ff][Aa][Ll][Ss][Ee])?$"},
                    "`true`: the response's events as SSE (replayed after `starting_after`, then followed); "
                    "`false` or empty: the response object",
                ),
                Param(
                    "starting_after",
                    "query",
                    {"type": "string", "pattern": "^[0-9]{0,12}$"},
                    "A sequence number; empty: from the start",
                ),
            ),
        ),
        Op(
            "POST",
            "/api/v1/llm/responses/{response_id}/cancel",
            "cancelResponse",
            "Cancels an agent response that is currently processing in the background.",
            {200: Ok("The response object after cancellation.", LlmResponse, examples={"seed": LLM_CANCELLED})},
            (401, 409),
            params=(LLM_ID, *KEYED),
        ),
        Op(
            "POST",
            "/api/v1/llm/responses/cancel",
            "cancelResponseByKey",
            "Cancel the response an Idempotency-Key created, or the one it will create",
            {
                200: Ok("The response object after cancellation", LlmResponse),
                202: Ok("No response yet: it will be born cancelled", LlmCancelledBeforeStart),
            },
            (401, 409),
            params=(*KEYED, START_KEY),
        ),
    ),
    {
        404: {
            "not_found": {
                "error": {
                    "message": "Response with id 'resp_cancel123' not found.",
                    "type": "invalid_request_error",
                    "param": None,
                    "code": "not_found",
                }
            }
        },
        401: {
            "unauthorized": {
                "error": {
                    "message": "Missing or invalid API key",
                    "type": "invalid_request_error",
                    "param": None,
                    "code": "invalid_api_key",
                }
            }
        },
    },
    {
        "bearerAuth": {
            "type": "http",
            "scheme": "bearer",
            "description": "Authenticate with your API key: `Authorization: Bearer <api-key>`. For multi-user "
            "server-side integrations, also send X-On-Behalf-Of to identify the end user making the request.",
        }
    },
)
