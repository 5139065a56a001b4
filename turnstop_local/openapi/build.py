"""Build the OpenAPI 3.1 documents: one per dialect (and the admin endpoints), one merged.

Request bodies are the handlers' own pydantic models (``turnstop.dialects.*.models``); the
answers are the models of :mod:`turnstop_local.openapi.responses`. Every operation lists every
status it can answer, each error with its dialect's error shape and, where a seed shows one,
the seed's exact body as an example.
"""

from __future__ import annotations

import copy
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

_LAYER = Path(__file__).resolve().parents[2] / "layers" / "turnstop"
if str(_LAYER) not in sys.path:  # the layer's package, as the local runtime's functions see it
    sys.path.append(str(_LAYER))

from turnstop.dialects.chat import models as chat_models  # noqa: E402
from turnstop.dialects.llm import models as llm_models  # noqa: E402
from turnstop.dialects.omni import models as omni_models  # noqa: E402
from turnstop.dialects.sessions import models as sessions_models  # noqa: E402
from turnstop.dialects.tasks import models as tasks_models  # noqa: E402
from turnstop.dialects.tasks import pricing  # noqa: E402
from turnstop.http.body import MAX_DURATION_SECONDS, MAX_IDEMPOTENCY_KEY  # noqa: E402
from turnstop.queue_cancel import BulkMessage, CancelMessage  # noqa: E402
from turnstop_local.openapi import responses as r  # noqa: E402
from turnstop_local.openapi.merge import merge  # noqa: E402

OPENAPI_VERSION = "3.1.0"
API_VERSION = "1.0.0"
REF = "#/components/schemas/{model}"

# Statuses every operation can answer: a malformed header, an unknown id, a body over the
# dialect's limit (or API Gateway's 10 MB), throttling, and the server's own failures.
COMMON_ERRORS = (400, 404, 413, 429, 500, 503)
# Statuses AWS itself may answer in its own `{"message": ...}` shape, before any function runs:
# an unknown route, a body over 10 MB, an invocation Lambda throttled (500 behind the HTTP API,
# 429 on a streaming Function URL), an integration that failed or timed out.
GATEWAY_STATUSES = frozenset({404, 413, 429, 500, 503})
REASONS = {
    400: "Malformed request: bad JSON, wrong types, missing fields, bad headers or cursors",
    401: "Not authenticated",
    403: "Not allowed",
    404: "Unknown, another tenant's or another end user's, or past its retention",
    409: "Conflicts with the current state",
    410: "Idempotency-Key replayed after its turn's answer is no longer kept",
    413: "Body over the size limit",
    422: "Idempotency-Key reused with a different body",
    429: "Rate limited or throttled (Retry-After where known)",
    500: "Internal error (nothing changed)",
    503: "Briefly unavailable; safe to retry (Retry-After)",
}


@dataclass(frozen=True)
class Param:
    name: str
    where: str  # "query", "header", "path"
    schema: dict[str, Any]
    description: str = ""
    required: bool = False


@dataclass(frozen=True)
class Ok:
    """One success status: a JSON model, or a stream (``sse`` describes its events), or none."""

    description: str
    model: type[BaseModel] | None = None
    sse: str | None = None
    events: tuple[tuple[tuple[str, ...], type[BaseModel]], ...] = ()  # (event names, their data)
    headers: tuple[str, ...] = ()
    any_of: tuple[type[BaseModel], ...] = ()
    null_body: bool = False
    examples: dict[str, Any] = field(default_factory=dict)  # name -> body, the seeds' where they show one


@dataclass(frozen=True)
class Op:
    method: str
    path: str
    operation_id: str
    summary: str
    ok: dict[int, Ok]
    errors: tuple[int, ...] = ()
    body: type[BaseModel] | None = None
    body_required: bool = True
    params: tuple[Param, ...] = ()
    auth: str = "bearer"  # "bearer", "cookie", "none"
    description: str = ""


@dataclass(frozen=True)
class Dialect:
    name: str
    title: str
    description: str
    error: type[BaseModel]
    ops: tuple[Op, ...]
    examples: dict[int, dict[str, Any]] = field(default_factory=dict)  # status -> name -> body
    security: dict[str, dict[str, Any]] = field(default_factory=dict)


# ----------------------------------------------------------------- shared parameters

ON_BEHALF_OF = Param(
    "X-On-Behalf-Of", "header", {"type": "string", "maxLength": 256, "pattern": "^[ -~]*$"},
    "The end user the call acts for (printable ASCII): a call naming one sees, resumes and cancels "
    "only that end user's turns.",
)  # fmt: skip
REQUEST_ID = Param(
    "X-Request-Id", "header", {"type": "string"},
    "Echoed in the answer's X-Request-Id when it is 1-200 printable ASCII characters, else replaced.",
)  # fmt: skip
STRICT_REQUEST_ID = Param(
    "X-Request-Id", "header", {"type": "string", "maxLength": 200, "pattern": "^[ -~]*$"},
    "Optional client request id echoed in the response: 1-200 printable ASCII characters, else a 400.",
)  # fmt: skip
IDEMPOTENCY_KEY = Param(
    "Idempotency-Key", "header", {"type": "string", "maxLength": MAX_IDEMPOTENCY_KEY, "pattern": "^[ -~]*$"},
    "Binds the key to the turn this call starts for 24 h: the same key and body replay it, "
    "a different body is 422 (empty: no key).",
)  # fmt: skip
START_KEY = Param(
    "Idempotency-Key", "header",
    {"type": "string", "minLength": 1, "maxLength": MAX_IDEMPOTENCY_KEY, "pattern": "^[ -~]+$"},
    "The key the turn was (or will be) started with.", required=True,
)  # fmt: skip
MAX_DURATION = Param(
    "Turnstop-Max-Duration", "header", {"type": "string", "pattern": "^[0-9]{1,3}(\\.[0-9]{1,6})?$"},
    "Seconds (0 < s <= 900) after which the runtime cancels the turn itself (source: deadline).",
)  # fmt: skip
LAST_EVENT_ID = Param(
    "Last-Event-ID", "header", {"type": "string", "pattern": "^[0-9]{0,12}$"},
    "Replay the events after this id, then follow (empty: from the start).",
)  # fmt: skip
AFTER = Param("after", "query", {"type": "string", "pattern": "^[0-9]{0,12}$"}, "As Last-Event-ID.")
ACCOUNT_ID = Param(
    "account_id", "query", {"type": "integer", "minimum": 0, "maximum": 2**63 - 1},
    "Account ID for the request", required=True,
)  # fmt: skip
PAGE = (
    Param("page_size", "query", {"type": "integer", "minimum": 1, "maximum": 100}),
    Param("page_token", "query", {"type": "string", "maxLength": 512}),
)


def path(name: str, description: str = "") -> Param:
    return Param(name, "path", {"type": "string", "minLength": 1, "maxLength": 256}, description, required=True)


KEYED = (ON_BEHALF_OF, REQUEST_ID)
SESSION_ID = path("id", "The session id (`sess_…`)")
RID = path(
    "rid",
    "The turn's response_id: the `X-Response-Id` header of the POST that started it, or `data.id` of its first "
    "event (`msg_…` in a session, `resp_…` stateless)",
)
BEARER = {
    "bearerAuth": {
        "type": "http",
        "scheme": "bearer",
        "description": "`Authorization: Bearer <key>` (keys are created with `keys create`; "
        "the local runtime prints a dev key).",
    }
}

# ----------------------------------------------------------------- sessions

SESSION_EVENTS = (
    "Server-sent events, each with an `id:` (its sequence number). First `message.created` "
    "(`data.id` is the response id, also in the `X-Response-Id` header), then `message.delta` "
    "(`{id, delta}`), last exactly one of `message.completed`, `message.cancelled` or "
    "`message.failed` (`{id, status, usage, billed, cancel?, error?}`). Stateless turns use "
    "`response.*` instead of `message.*`. A quiet stream carries `: keep-alive` comments."
)


def turn_events(prefix: str) -> tuple[tuple[tuple[str, ...], type[BaseModel]], ...]:
    return (
        ((f"{prefix}.created",), r.TurnCreatedEvent),
        ((f"{prefix}.delta",), r.TurnDeltaEvent),
        ((f"{prefix}.completed", f"{prefix}.cancelled", f"{prefix}.failed"), r.TurnEndEvent),
    )


MESSAGE_EVENTS = turn_events("message")
RESPONSE_EVENTS = turn_events("response")
LLM_EVENT_NAMES = (
    "response.created", "response.in_progress", "response.output_item.added", "response.content_part.added",
    "response.output_text.delta", "response.output_text.done", "response.content_part.done",
    "response.output_item.done", "response.completed", "response.cancelled", "response.failed",
    "response.incomplete",
)  # fmt: skip
CHAT_EVENT_NAMES = ("token", "confirmation_required", "done", "cancelled", "error")

CANCEL_OK = {
    202: Ok(
        "Cancellation initiated: the stream's next/last event is `…cancelled`",
        r.SessionsCancel,
        examples={"cancelling": {"response_id": "msg_3kTq8dZ2", "status": "cancelling"}},
    ),
    200: Ok(
        "Turn already finished: `already_complete` (idempotent)",
        r.SessionsCancel,
        examples={"already_complete": {"response_id": "msg_3kTq8dZ2", "status": "already_complete"}},
    ),
}
SESSIONS = Dialect(
    "sessions",
    "turnstop sessions API",
    "Streaming session turns and stateless `/v1/responses` over SSE, with cancel, resume and "
    'a ledger (seed 002). Errors: `{"error": {"type", "message", "request_id"}}`.',
    r.SessionsError,
    (
        Op(
            "POST",
            "/v1/sessions",
            "createSession",
            "Create a session",
            {201: Ok("The session", r.Session)},
            (401,),
            sessions_models.CreateSession,
            False,
            KEYED,
        ),
        Op(
            "DELETE",
            "/v1/sessions/{id}",
            "deleteSession",
            "Destroy a session; its in-flight turn is cancelled",
            {200: Ok("Deleted", r.DeletedSession)},
            (401,),
            params=(SESSION_ID, *KEYED),
        ),
        Op(
            "POST",
            "/v1/sessions/{id}/messages",
            "sendMessage",
            "Start a session turn and stream it",
            {200: Ok("The turn's events", sse=SESSION_EVENTS, events=MESSAGE_EVENTS, headers=("X-Response-Id",))},
            (401, 409, 410, 422),
            sessions_models.SendMessage,
            True,
            (SESSION_ID, *KEYED, IDEMPOTENCY_KEY, MAX_DURATION),
        ),
        Op(
            "POST",
            "/v1/responses",
            "createResponse",
            "Start a stateless turn and stream it",
            {
                200: Ok(
                    "The turn's events",
                    sse=SESSION_EVENTS.replace("message.", "response."),
                    events=RESPONSE_EVENTS,
                    headers=("X-Response-Id",),
                )
            },
            (401, 409, 410, 422),
            sessions_models.CreateResponse,
            True,
            (*KEYED, IDEMPOTENCY_KEY, MAX_DURATION),
        ),
        Op(
            "GET",
            "/v1/sessions/{id}/responses/{rid}/events",
            "resumeSessionTurn",
            "Replay a session turn's events after a cursor and follow",
            {200: Ok("The turn's events", sse=SESSION_EVENTS, events=MESSAGE_EVENTS)},
            (401,),
            params=(SESSION_ID, RID, *KEYED, LAST_EVENT_ID, AFTER),
        ),
        Op(
            "GET",
            "/v1/responses/{rid}/events",
            "resumeResponse",
            "Replay a stateless turn's events after a cursor and follow",
            {200: Ok("The turn's events", sse=SESSION_EVENTS.replace("message.", "response."), events=RESPONSE_EVENTS)},
            (401,),
            params=(RID, *KEYED, LAST_EVENT_ID, AFTER),
        ),
        Op(
            "POST",
            "/v1/sessions/{id}/responses/{rid}/cancel",
            "cancelSessionTurn",
            "Cancel an in-flight session turn",
            CANCEL_OK,
            (401,),
            r.CancelReason,
            False,
            (SESSION_ID, RID, *KEYED),
        ),
        Op(
            "POST",
            "/v1/responses/{rid}/cancel",
            "cancelResponse",
            "Cancel an in-flight stateless turn",
            CANCEL_OK,
            (401,),
            r.CancelReason,
            False,
            (RID, *KEYED),
        ),
        Op(
            "POST",
            "/v1/sessions/{id}/responses/cancel",
            "cancelSessionTurnByKey",
            "Cancel the session turn an Idempotency-Key started, or the one it will start",
            CANCEL_OK,
            (401,),
            r.CancelReason,
            False,
            (SESSION_ID, *KEYED, START_KEY),
        ),
        Op(
            "POST",
            "/v1/responses/cancel",
            "cancelResponseByKey",
            "Cancel the stateless turn an Idempotency-Key started, or the one it will start",
            CANCEL_OK,
            (401,),
            r.CancelReason,
            False,
            (*KEYED, START_KEY),
        ),
        Op(
            "GET",
            "/v1/ledger",
            "ledger",
            "The caller's usage and debit entries",
            {200: Ok("Ledger entries", r.Ledger)},
            (401,),
            params=(
                *KEYED,
                Param(
                    "response_id",
                    "query",
                    {"type": "string", "pattern": "^[A-Za-z0-9_-]{0,128}$"},
                    "One turn's entries (any dialect's id; empty: every entry)",
                ),
            ),
        ),
    ),  # fmt: skip
    {
        404: {"not_found": {"error": {"type": "not_found", "message": "Response not found", "request_id": "9b1c"}}},
        401: {
            "unauthorized": {
                "error": {"type": "unauthorized", "message": "Missing or invalid API key", "request_id": "9b1c"}
            }
        },  # fmt: skip
    },
    BEARER,
)

# ----------------------------------------------------------------- omni

OMNI_SEED_ERRORS = {
    400: {"missing_account_id": {"error": {"code": 400, "message": "Failed to deserialize query string: missing field `account_id`"},
                                 "metadata": {"request_id": "10f877f8-130b-4f02-b40a-1b6ab5d8acdf"}}},
    403: {"forbidden": {"error": {"code": 403, "message": "The caller does not have permission to execute "
                                  "the specified operation"},
                        "metadata": {"request_id": "1c610eec-b873-4092-93aa-f14b6f501e4b"}}},
    404: {"not_found": {"error": {"code": 404, "message": "Response not found"},
                        "metadata": {"request_id": "a5bc6ea6-1b72-4f31-bb7d-2bd57151decc"}}},
}  # fmt: skip
OMNI_Q = (ON_BEHALF_OF, REQUEST_ID, ACCOUNT_ID)
OMNI = Dialect(
    "omni",
    "turnstop omni API",
    "Threads with pollable responses and a `DELETE` cancel (seed 000), as the `clearstreet` SDK "
    'calls them. Every body is `{"data": ..., "metadata": {"request_id"}}`; errors are '
    '`{"error": {"code", "message"}, "metadata": {"request_id"}}`; a 409 carries '
    "`x-should-retry: false`.",
    r.OmniError,
    (
        Op(
            "POST",
            "/v1/omni-ai/threads",
            "createThread",
            "New thread with its first message; queues a response",
            {201: Ok("Created", r.OmniCreatedEnvelope)},
            (401, 403, 409, 410, 422),
            omni_models.CreateThread,
            True,
            (*KEYED, IDEMPOTENCY_KEY, MAX_DURATION),
        ),
        Op(
            "GET",
            "/v1/omni-ai/threads",
            "listThreads",
            "The caller's threads",
            {200: Ok("Threads", r.OmniThreadsEnvelope)},
            (401, 403),
            params=(*OMNI_Q, *PAGE),
        ),
        Op(
            "GET",
            "/v1/omni-ai/threads/{thread_id}",
            "getThread",
            "A thread",
            {200: Ok("The thread", r.OmniThreadEnvelope)},
            (401, 403),
            params=(path("thread_id"), *OMNI_Q),
        ),
        Op(
            "POST",
            "/v1/omni-ai/threads/{thread_id}/messages",
            "createMessage",
            "Next message of a thread; queues a response (409 while one is active)",
            {201: Ok("Created", r.OmniCreatedEnvelope)},
            (401, 403, 409, 410, 422),
            omni_models.CreateMessage,
            True,
            (path("thread_id"), *KEYED, IDEMPOTENCY_KEY, MAX_DURATION),
        ),
        Op(
            "GET",
            "/v1/omni-ai/threads/{thread_id}/messages",
            "listMessages",
            "A thread's immutable history",
            {200: Ok("Messages", r.OmniMessagesEnvelope)},
            (401, 403),
            params=(path("thread_id"), *OMNI_Q, *PAGE),
        ),
        Op(
            "GET",
            "/v1/omni-ai/threads/{thread_id}/response",
            "getActiveResponse",
            "The thread's active response (null when none)",
            {200: Ok("The active response", r.OmniActiveResponseEnvelope)},
            (401, 403),
            params=(path("thread_id"), *OMNI_Q),
        ),
        Op(
            "GET",
            "/v1/omni-ai/responses/{response_id}",
            "getResponse",
            "Poll a response",
            {200: Ok("The response, partial while running", r.OmniResponseEnvelope)},
            (401, 403),
            params=(path("response_id"), *OMNI_Q),
        ),
        Op(
            "DELETE",
            "/v1/omni-ai/responses/{response_id}",
            "cancelResponse",
            "Cancel Response",
            {
                200: Ok(
                    "`canceled: true` when this call stopped it; false when it had already ended",
                    r.OmniCancelEnvelope,
                    examples={
                        "seed": {
                            "data": {"canceled": False},
                            "metadata": {"request_id": "fa26a786-f5d3-48b0-80eb-778e17af4964"},
                        }
                    },
                )
            },
            (401, 403),
            params=(path("response_id", "Response identifier to cancel"), *OMNI_Q),
            description="Requests cancellation of a queued or running response. If the response has already "
            "reached a terminal status, this is an idempotent success. A canceled turn still produces a final "
            "assistant message with outcome canceled in the thread history.",
        ),
    ),  # fmt: skip
    OMNI_SEED_ERRORS,
    BEARER,
)

# ----------------------------------------------------------------- llm

LLM_EVENTS = (
    "The Responses API's streaming events, each `{type, sequence_number, ...}` with an `id:`: "
    "`response.created`, `response.in_progress`, `response.output_item.added`, "
    "`response.content_part.added`, `response.output_text.delta`…, `response.output_text.done`, "
    "`response.content_part.done`, `response.output_item.done`, then one of `response.completed`, "
    "`response.cancelled`, `response.failed`, `response.incomplete`."
)
# The seed's example (seed 004), verbatim.
LLM_CANCELLED: dict[str, Any] = {
    "id": "resp_cancel123", "object": "response", "created_at": 1735689600, "status": "cancelled", "error": None,
    "incomplete_details": None, "background": False, "instructions": None, "max_output_tokens": None,
    "max_tool_calls": 30, "metadata": {}, "model": "meetkai:functionary-urdu-mini-pak", "output": [],
    "output_text": "", "parallel_tool_calls": True, "previous_response_id": None,
    "reasoning": {"effort": None, "summary": None}, "service_tier": "auto", "store": True,
    "text": {"format": {"type": "text"}, "verbosity": "medium"}, "tool_choice": "auto", "tools": [],
    "truncation": "auto",
    "usage": {"input_tokens": 0, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 0,
              "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 0},
    "user": None,
}  # fmt: skip
LLM_ID = Param(
    "response_id", "path", {"type": "string", "minLength": 1, "maxLength": 256},
    "The unique identifier of the response, formatted as 'resp_' or 'resp-' followed by alphanumeric characters.",
    required=True,
)  # fmt: skip
LLM = Dialect(
    "llm",
    "turnstop llm API",
    "OpenAI-compatible Responses (seed 004), as the `openai` and `meetkai-mka1` SDKs call them. "
    'Errors: `{"error": {"message", "type", "param", "code"}}`.',
    r.LlmError,
    (
        Op(
            "POST",
            "/api/v1/llm/responses",
            "createResponse",
            "Create a response: JSON (`background` returns at once) or SSE with `stream: true`",
            {
                200: Ok(
                    "The response object, or its events with `stream: true`",
                    r.LlmResponse,
                    sse=LLM_EVENTS,
                    events=((LLM_EVENT_NAMES, r.LlmStreamEvent),),
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
                    r.LlmResponse,
                    sse=LLM_EVENTS,
                    events=((LLM_EVENT_NAMES, r.LlmStreamEvent),),
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
            {200: Ok("The response object after cancellation.", r.LlmResponse, examples={"seed": LLM_CANCELLED})},
            (401, 409),
            params=(LLM_ID, *KEYED),
        ),
        Op(
            "POST",
            "/api/v1/llm/responses/cancel",
            "cancelResponseByKey",
            "Cancel the response an Idempotency-Key created, or the one it will create",
            {
                200: Ok("The response object after cancellation", r.LlmResponse),
                202: Ok("No response yet: it will be born cancelled", r.LlmCancelledBeforeStart),
            },
            (401, 409),
            params=(*KEYED, START_KEY),
        ),
    ),  # fmt: skip
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
    },  # fmt: skip
    {
        "bearerAuth": {
            "type": "http",
            "scheme": "bearer",
            "description": "Authenticate with your API key: `Authorization: Bearer <api-key>`. For multi-user "
            "server-side integrations, also send X-On-Behalf-Of to identify the end user making the request.",
        }
    },
)

# ----------------------------------------------------------------- tasks

TASKS = Dialect(
    "tasks",
    "turnstop tasks API",
    "Async jobs, charged on acceptance and refunded in full on cancel or failure (seed 003). "
    'Errors: `{"object": "error", "error": {"code", "message", "retryable"}, "request_id"}`. '
    "`Idempotency-Key` on create and cancel replays the first answer exactly (`Idempotent-Replayed: true`).",
    r.TasksError,
    (
        Op(
            "POST",
            "/v1/tasks",
            "createTask",
            "Create a task: queued, charged its estimate",
            {202: Ok("Queued", r.TaskObject, headers=("Location",))},
            (401, 409, 410, 422),
            tasks_models.CreateTask,
            True,
            (ON_BEHALF_OF, STRICT_REQUEST_ID, IDEMPOTENCY_KEY, MAX_DURATION),
        ),
        Op(
            "GET",
            "/v1/tasks",
            "listTasks",
            "The caller's tasks, newest first",
            {200: Ok("Tasks", r.TaskList)},
            (401,),
            params=(
                ON_BEHALF_OF,
                STRICT_REQUEST_ID,
                Param(
                    "status",
                    "query",
                    {"type": "string", "enum": ["", "queued", "running", "succeeded", "failed", "cancelled"]},
                    "Only tasks in this status (empty: any)",
                ),
                Param("limit", "query", {"type": "integer", "minimum": 1, "maximum": 100}),
                Param("cursor", "query", {"type": "string", "maxLength": 512}),
            ),
        ),
        Op(
            "GET",
            "/v1/tasks/{task_id}",
            "getTask",
            "A task",
            {200: Ok("The task", r.TaskObject)},
            (401,),
            params=(path("task_id"), ON_BEHALF_OF, STRICT_REQUEST_ID),
        ),
        Op(
            "POST",
            "/v1/tasks/{task_id}/cancel",
            "cancelTask",
            "Cancel a task (best-effort)",
            {
                200: Ok(
                    "Already terminal; returns final state (idempotent), or a queued task cancelled at once",
                    r.TaskObject,
                ),
                202: Ok("Running: cancel requested; it ends cancelled", r.TaskObject),
            },
            (401, 409, 422),
            r.StrictCancelReason,
            False,
            (path("task_id", "Task Id"), ON_BEHALF_OF, STRICT_REQUEST_ID, IDEMPOTENCY_KEY),
        ),
        Op(
            "POST",
            "/v1/tasks/cancel",
            "cancelTaskByKey",
            "Cancel the task an Idempotency-Key created, or the one it will create",
            {
                200: Ok("The task", r.TaskObject),
                202: Ok(
                    "The task, or a tombstone when none exists yet", any_of=(r.TaskObject, r.TaskCancelledBeforeStart)
                ),
            },
            (401, 409),
            r.StrictCancelReason,
            False,
            (ON_BEHALF_OF, STRICT_REQUEST_ID, START_KEY),
        ),
    ),  # fmt: skip
    {
        404: {
            "not_found": {
                "object": "error",
                "error": {"code": "not_found", "message": "No such task", "retryable": False},
                "request_id": "9b1c",
            }
        },
    },  # fmt: skip
    {
        "bearerAuth": {"type": "http", "scheme": "bearer", "description": "Bearer API key."},
    },
)

# ----------------------------------------------------------------- chat

CSRF = (
    "State-changing requests (every POST) must be `Content-Type: application/json` and, when the "
    "browser sends an `Origin`, come from an allowed origin (the API's own, "
    "`TURNSTOP_PUBLIC_BASE_URL`, `TURNSTOP_ALLOWED_ORIGINS`); otherwise `403`. CORS with "
    "credentials for allowed origins; preflights (`OPTIONS`) allow `Content-Type` and `X-Request-Id`."
)
CHAT_EVENTS = (
    'Server-sent events without ids, each `event: <name>` and `data: {"event_type": <name>, "data": {...}}`: '
    "`token` (`{thread_id, text}`)…, `confirmation_required` (`{thread_id, message}`), then one of "
    "`done` (`{thread_id, requires_confirmation}`), `cancelled` or `error`."
)
THREAD_BODY = r.ChatThreadRef
CHAT = Dialect(
    "chat",
    "turnstop chat API",
    "A browser-facing chat whose agent plans actions that wait for the user's confirmation "
    "(seed 001), with OAuth 2.0 sign-in (authorization code + PKCE) and a server-side session in "
    "the `HttpOnly` `session_id` cookie. " + CSRF + ' Errors: `{"error": <code>, "message"}`.',
    r.ChatError,
    (
        Op(
            "POST",
            "/chat",
            "chat",
            "Send a message; the reply, and a question when it planned an action",
            {
                200: Ok(
                    "The reply",
                    r.ChatReply,
                    headers=("X-Thread-Id",),
                    examples={
                        "requires_confirmation": {
                            "response": "I can schedule that meeting for you.",
                            "thread_id": "thread_xyz789",
                            "requires_confirmation": True,
                            "confirmation_message": "Should I create a meeting titled 'Project Review' on March 10th "
                            "at 3 PM?",
                        }
                    },
                )
            },
            (401, 403, 409),
            chat_models.SendMessage,
            True,
            (REQUEST_ID,),
            "cookie",
        ),
        Op(
            "POST",
            "/chat/stream",
            "chatStream",
            "The same turn as SSE",
            {200: Ok("The reply's events", sse=CHAT_EVENTS, events=((CHAT_EVENT_NAMES, r.ChatStreamEvent),))},
            (401, 403, 409),
            chat_models.SendMessage,
            True,
            (REQUEST_ID,),
            "cookie",
        ),
        Op(
            "POST",
            "/chat/cancel",
            "cancelAction",
            "Cancel a pending action that was planned by the agent and is waiting for user confirmation",
            {
                200: Ok(
                    "Action cancelled successfully",
                    r.ChatCancelled,
                    examples={
                        "seed": {
                            "thread_id": "thread_xyz789",
                            "status": "cancelled",
                            "response": "Action cancelled.",
                            "cancelled": True,
                        }
                    },
                )
            },
            (401, 403, 409),
            THREAD_BODY,
            True,
            (REQUEST_ID,),
            "cookie",
            "Rate limit: 60 requests per minute per session (429 after). Stops a streaming reply too.",
        ),
        Op(
            "POST",
            "/chat/confirm",
            "confirmAction",
            "Execute the pending action",
            {200: Ok("Confirmed and executed", r.ChatConfirmed)},
            (401, 403, 409),
            THREAD_BODY,
            True,
            (REQUEST_ID,),
            "cookie",
        ),
        Op(
            "GET",
            "/chat/threads/{thread_id}",
            "getThread",
            "A thread's messages and actions",
            {200: Ok("The thread", r.ChatThread)},
            (401, 403),
            params=(path("thread_id"), REQUEST_ID),
            auth="cookie",
        ),
        Op(
            "GET",
            "/auth/login",
            "login",
            "Start the sign-in: a redirect to the OpenID provider",
            {
                302: Ok(
                    "To the provider's authorize endpoint (sets the short-lived `turnstop_login` cookie)",
                    headers=("Location", "Set-Cookie"),
                )
            },
            (),
            params=(
                Param("login_hint", "query", {"type": "string", "maxLength": 256}),
                Param("return_to", "query", {"type": "string", "maxLength": 2048}, "A path on this site"),
            ),
            auth="none",
        ),
        Op(
            "GET",
            "/auth/callback",
            "callback",
            "The provider's redirect back: sets the `session_id` cookie",
            {
                200: Ok("Signed in", r.SignedIn, headers=("Set-Cookie",)),
                302: Ok("Signed in; back to `return_to`", headers=("Location", "Set-Cookie")),
            },
            (401,),
            params=(
                Param("code", "query", {"type": "string", "maxLength": 2048}),
                Param("state", "query", {"type": "string", "maxLength": 512}),
                Param("error", "query", {"type": "string", "maxLength": 256}),
            ),
            auth="none",
        ),
        Op(
            "POST",
            "/auth/logout",
            "logout",
            "End the session and clear the cookie",
            {200: Ok("Signed out", r.SignedOut, headers=("Set-Cookie",))},
            (401, 403),
            r.AnyJson,
            False,
            params=(REQUEST_ID,),
            auth="cookie",
        ),
        Op(
            "GET",
            "/auth/session",
            "whoami",
            "Who is signed in",
            {200: Ok("The signed-in user", r.SignedIn)},
            (401,),
            params=(REQUEST_ID,),
            auth="cookie",
        ),
    ),  # fmt: skip
    {
        401: {
            "not_authenticated": {
                "error": "not_authenticated",
                "message": "Not authenticated: sign in through /auth/login to get a valid session_id cookie",
            }
        },
        409: {
            "nothing_to_confirm": {
                "error": "nothing_to_confirm",
                "message": "Nothing to confirm: the action was cancelled",
            }
        },
        500: {
            "cancellation_error": {"error": "cancellation_error", "message": "Failed to cancel action: <error details>"}
        },
    },  # fmt: skip
    {
        "sessionCookie": {
            "type": "apiKey",
            "in": "cookie",
            "name": "session_id",
            "description": "Requires a valid session cookie (session_id) obtained through the OAuth flow "
            "(`GET /auth/login`). " + CSRF,
        }
    },
)

# ----------------------------------------------------------------- admin

ADMIN = Dialect(
    "admin",
    "turnstop admin API",
    "The operators' bulk cancel: every in-flight turn of a scope of the caller's own tenant. "
    'Admin keys only (`keys create --admin`). Errors: `{"error": {"type", "message", "request_id"}}`.',
    r.SessionsError,
    (
        Op(
            "POST",
            "/v1/admin/cancels",
            "startBulkCancel",
            "Stop every in-flight turn of a scope",
            {
                200: Ok("Done: the whole report", r.BulkCancelReport, headers=("Location",)),
                202: Ok("Handed to the cancel queue: the report so far", r.BulkCancelReport, headers=("Location",)),
            },
            (401, 403),
            r.BulkCancelRequest,
            True,
            KEYED,
        ),
        Op(
            "GET",
            "/v1/admin/cancels/{bulk_id}",
            "getBulkCancel",
            "A bulk cancel's report",
            {200: Ok("The report", r.BulkCancelReport)},
            (401, 403),
            params=(path("bulk_id"), *KEYED),
        ),
    ),  # fmt: skip
    {
        403: {
            "not_admin": {
                "error": {
                    "type": "forbidden",
                    "message": "This endpoint needs an admin key (keys create --admin)",
                    "request_id": "9b1c",
                }
            }
        }
    },  # fmt: skip
    {"bearerAuth": {"type": "http", "scheme": "bearer", "description": "An admin key: `Authorization: Bearer <key>`."}},
)

DIALECTS: dict[str, Dialect] = {d.name: d for d in (SESSIONS, OMNI, LLM, TASKS, CHAT, ADMIN)}


# ----------------------------------------------------------------- what the handlers check beyond the models

NON_BLANK = "\\S"  # at least one character that is not white space
TASK_MODELS = sorted({"auto", *(m for ms in pricing.CAPABILITIES.values() for m in ms)})

# Rules a handler or a model validator enforces that the model's own schema cannot say,
# merged into the model's schema (their values come from the layer's own constants).
DEADLINE = {
    "properties": {
        "max_duration_seconds": {
            "anyOf": [{"type": "number", "exclusiveMinimum": 0, "maximum": MAX_DURATION_SECONDS}, {"type": "null"}],
            "description": "Seconds after which the runtime cancels the turn itself (or the "
            "Turnstop-Max-Duration header; both must agree)",
        }
    }
}
CHECKED_BEYOND: dict[str, dict[type[BaseModel], dict[str, Any]]] = {
    "sessions": {
        sessions_models.SendMessage: DEADLINE,
        sessions_models.CreateResponse: {
            **DEADLINE,
            "description": "`input` is the prompt (`message` is accepted too): one of them is required.",
            "anyOf": [
                {"properties": {"input": {"type": "string"}}, "required": ["input"]},
                {"properties": {"message": {"type": "string"}}, "required": ["message"]},
            ],
        },
    },
    "llm": {
        llm_models.CreateResponse: {
            "properties": {
                **DEADLINE["properties"],
                "model": {"enum": sorted(llm_models.MODELS)},
                "input": {
                    "anyOf": [
                        {"type": "string", "pattern": NON_BLANK},
                        {"type": "array", "items": {"$ref": REF.format(model="MessageItem")}, "minItems": 1},
                    ],
                    "description": "The prompt, or messages; it must contain some text",
                },
            }
        }
    },
    "tasks": {
        tasks_models.CreateTask: {
            "properties": {
                **DEADLINE["properties"],
                "capability": {"enum": sorted(pricing.CAPABILITIES)},
                "model": {"enum": TASK_MODELS, "description": "`auto`, or one of the capability's models"},
                "metadata": {
                    "maxProperties": tasks_models.MAX_METADATA_KEYS,
                    "propertyNames": {"minLength": 1, "maxLength": tasks_models.MAX_METADATA_KEY_CHARS},
                    "additionalProperties": {"type": "string", "maxLength": tasks_models.MAX_METADATA_VALUE_CHARS},
                },
            }
        },
        tasks_models.TaskInput: {"properties": {"prompt": {"pattern": NON_BLANK}}},
        tasks_models.CallbackSpec: {"properties": {"url": {"format": "uri"}}},
    },
    "omni": {
        omni_models.CreateThread: {
            "description": "`instant` takes `text`; `deep_insights` takes a `target` (and an optional `thesis`).",
            "properties": {"text": {"pattern": NON_BLANK}},
            "oneOf": [
                {"properties": {"type": {"const": "instant"}, "text": {"type": "string"}}, "required": ["text"]},
                {
                    "properties": {"type": {"const": "deep_insights"}, "target": {"type": "object"}},
                    "required": ["target"],
                },
            ],
        },
        omni_models.CreateMessage: {"properties": {"text": {"pattern": NON_BLANK}}},
        omni_models.ContextItem: {"properties": {"kind": {"pattern": NON_BLANK}, "label": {"pattern": NON_BLANK}}},
        omni_models.Target: {"properties": {"ticker": {"pattern": NON_BLANK}}},
    },
}


def _deep_merge(into: dict[str, Any], extra: dict[str, Any]) -> None:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _deep_merge(into[key], value)
        else:
            into[key] = copy.deepcopy(value)


# ----------------------------------------------------------------- building


def _schemas(models: list[type[BaseModel]]) -> tuple[dict[type[BaseModel], dict[str, Any]], dict[str, Any]]:
    refs, top = models_json_schema([(m, "validation") for m in models], ref_template=REF)
    by_model = {cast(type[BaseModel], m): dict(ref) for (m, _), ref in refs.items()}
    return by_model, _standard_keywords(top.get("$defs", {}))


# pydantic writes a numeric constraint on a union (``StrictFloat | StrictInt = Field(le=2)``) as
# its own keyword next to ``anyOf``; JSON Schema's names for them:
_BOUNDS = {"ge": "minimum", "le": "maximum", "gt": "exclusiveMinimum", "lt": "exclusiveMaximum"}


def _standard_keywords(obj: Any) -> Any:
    if isinstance(obj, list):
        return [_standard_keywords(v) for v in obj]
    if not isinstance(obj, dict):
        return obj
    out = {k: _standard_keywords(v) for k, v in obj.items()}
    if "anyOf" in out and any(k in out for k in _BOUNDS):
        bounds = {_BOUNDS[k]: out.pop(k) for k in list(out) if k in _BOUNDS}
        out["anyOf"] = [{**branch, **bounds} if branch.get("type") in ("number", "integer") else branch
                        for branch in out["anyOf"]]  # fmt: skip
    return out


def _models_of(d: Dialect) -> list[type[BaseModel]]:
    found: list[type[BaseModel]] = [d.error, r.GatewayError]
    for op in d.ops:
        if op.body is not None:
            found.append(op.body)
        for ok in op.ok.values():
            found.extend([ok.model] if ok.model else [])
            found.extend(ok.any_of)
            found.extend(model for _, model in ok.events)
    return list(dict.fromkeys(found))


def _parameter(p: Param) -> dict[str, Any]:
    out: dict[str, Any] = {"name": p.name, "in": p.where, "schema": p.schema, "required": p.required}
    if p.description:
        out["description"] = p.description
    return out


def _error_response(d: Dialect, status: int, refs: dict[type[BaseModel], dict[str, Any]]) -> dict[str, Any]:
    schema: dict[str, Any] = refs[d.error]
    description = REASONS[status]
    if status in GATEWAY_STATUSES:
        schema = {"anyOf": [refs[d.error], refs[r.GatewayError]]}
        description += '; API Gateway\'s own answer is `{"message": ...}`'
    media: dict[str, Any] = {"schema": schema}
    if status in d.examples:
        media["examples"] = {name: {"value": body} for name, body in d.examples[status].items()}
    headers = ("X-Request-Id",) + (("Retry-After",) if status in (429, 503) else ())
    headers += ("x-should-retry",) if d.name == "omni" and status == 409 else ()
    return {"description": description, "content": {"application/json": media}, "headers": _headers(headers)}


HEADER_DOCS = {
    "X-Response-Id": "The turn's response id, before any event",
    "Location": "Where to read this resource (or, on a sign-in, where the browser goes next)",
    "X-Thread-Id": "The thread of this reply",
    "Set-Cookie": "`session_id` (HttpOnly; set on sign-in, cleared on sign-out) or the sign-in's `turnstop_login`",
    "X-Request-Id": "The request's id: the caller's X-Request-Id when it was valid, else one of ours",
    "Retry-After": "Seconds to wait before retrying, where known",
    "x-should-retry": "`false`: the official SDK must not resend a rejected turn",
    "Idempotent-Replayed": "`true` when the answer is the replay of an earlier request with this Idempotency-Key",
}


def _headers(names: tuple[str, ...]) -> dict[str, Any]:
    return {h: {"description": HEADER_DOCS[h], "schema": {"type": "string"}} for h in names}


def _event_schema(ok: Ok, refs: dict[type[BaseModel], dict[str, Any]]) -> dict[str, Any]:
    """One server-sent event (Open API 3.1: a streaming media type's ``schema`` describes each
    event): its name, its optional ``id``, and its ``data`` as JSON of the event's model."""
    kinds = [
        {
            "type": "object",
            "required": ["event", "data"],
            "properties": {
                "event": {"enum": list(names)},
                "id": {"type": "string", "pattern": "^[0-9]+$"},
                "data": {"type": "string", "contentMediaType": "application/json", "contentSchema": refs[model]},
            },
        }
        for names, model in ok.events
    ]
    return {"description": ok.sse, "anyOf": kinds}


def _ok_response(ok: Ok, refs: dict[type[BaseModel], dict[str, Any]], replays: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"description": ok.description}
    content: dict[str, Any] = {}
    if ok.model is not None:
        content["application/json"] = {"schema": refs[ok.model]}
        if ok.examples:
            content["application/json"]["examples"] = {name: {"value": v} for name, v in ok.examples.items()}
    elif ok.any_of:
        content["application/json"] = {"schema": {"anyOf": [refs[m] for m in ok.any_of]}}
    if ok.sse is not None:
        content["text/event-stream"] = {"schema": _event_schema(ok, refs)}
    if content:
        out["content"] = content
    out["headers"] = _headers(("X-Request-Id", *ok.headers, *(("Idempotent-Replayed",) if replays else ())))
    return out


def _operation(d: Dialect, op: Op, refs: dict[type[BaseModel], dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"operationId": f"{d.name}.{op.operation_id}", "summary": op.summary, "tags": [d.name]}
    if op.description:
        out["description"] = op.description
    if op.params:
        out["parameters"] = [_parameter(p) for p in op.params]
    if op.body is not None:
        out["requestBody"] = {"required": op.body_required, "content": {"application/json": {"schema": refs[op.body]}}}
    replays = d.name == "tasks" and IDEMPOTENCY_KEY in op.params  # tasks replay the first answer exactly
    responses: dict[str, Any] = {str(s): _ok_response(ok, refs, replays) for s, ok in op.ok.items()}
    for status in sorted(set(op.errors) | set(COMMON_ERRORS)):
        responses[str(status)] = _error_response(d, status, refs)
    out["responses"] = responses
    scheme = next(iter(d.security))
    out["security"] = [] if op.auth == "none" else [{scheme: []}]
    return out


def document(name: str) -> dict[str, Any]:
    d = DIALECTS[name]
    refs, defs = _schemas(_models_of(d))
    for model, extra in CHECKED_BEYOND.get(name, {}).items():
        _deep_merge(defs[model.__name__], extra)
    paths: dict[str, dict[str, Any]] = {}
    for op in d.ops:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(d, op, refs)
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": d.title, "version": API_VERSION, "description": d.description},
        "servers": [{"url": "http://127.0.0.1:3000", "description": "the local runtime (make run)"}],
        "tags": [{"name": d.name, "description": d.description}],
        "paths": paths,
        "components": {"schemas": defs, "securitySchemes": d.security},
    }


def queue_cancel_schema() -> dict[str, Any]:
    """The cancel queue's message, either kind, as one JSON Schema (2020-12)."""
    refs, defs = _schemas([CancelMessage, BulkMessage, r.BulkScope])
    defs = json.loads(json.dumps(defs).replace("#/components/schemas/", "#/$defs/"))
    defs["BulkMessage"]["properties"]["scope"] = {"$ref": "#/$defs/BulkScope"}
    defs["BulkMessage"]["properties"]["page"]["description"] = "set by turnstop on a bulk cancel's further pages"
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "queue-cancel.schema.json",
        "title": "turnstop cancel queue message",
        "description": "One message of the cancel queue (output CancelQueueUrl): stop one turn "
        "(`turn_id` + `tenant`), or every in-flight turn of a scope (`scope`, as POST /v1/admin/cancels).",
        "oneOf": [{"$ref": "#/$defs/CancelMessage"}, {"$ref": "#/$defs/BulkMessage"}],
        "$defs": defs,
    }


def documents() -> dict[str, dict[str, Any]]:
    """Every file ``make openapi`` writes, by name."""
    out = {f"{name}.json": document(name) for name in DIALECTS}
    out["queue-cancel.schema.json"] = queue_cancel_schema()
    return out


def merged() -> dict[str, Any]:
    """Every dialect in one document (what the local runtime serves at ``/openapi.json``)."""
    return merge({name: document(name) for name in DIALECTS})


def render(doc: dict[str, Any]) -> str:
    """Deterministic text: sorted keys, two-space indent, a trailing newline."""
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
